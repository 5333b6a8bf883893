using System.Formats.Tar;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text.Json;

namespace TwoPhase.Deployment.Tests;

/// <summary>
/// scripts/images.sh builds the three images with the SDK's container support, as OCI archives; each archive is opened
/// and checked: an OCI layout whose every blob matches its digest, a manifest, and a config with the service's
/// entrypoint, port, environment and non-root user. A missing prerequisite fails the test with the script's message.
/// </summary>
public sealed class ImageTests
{
    private static readonly TimeSpan ScriptTimeout = TimeSpan.FromMinutes(40);

    [Fact]
    [Trait("Category", "Images")]
    public async Task ImagesScript_BuildsOciArchives_WithTheServicesEntrypointPortAndEnvironment()
    {
        var run = await Run.ProcessAsync("bash", [Repo.PathOf("scripts", "images.sh")], ScriptTimeout);
        Assert.True(run.ExitCode == 0, $"scripts/images.sh exited {run.ExitCode}:\n{run.Tail()}");

        foreach (var (project, settings) in await ContainerSettings.ForAllAsync())
        {
            var archive = Repo.PathOf("artifacts", "images", settings.Repository.Split('/')[^1] + ".tar");
            var blobs = ReadArchive(archive);
            Assert.Equal("1.0.0", JsonDocument.Parse(blobs["oci-layout"]).RootElement.GetProperty("imageLayoutVersion").GetString());
            foreach (var (name, bytes) in blobs.Where(b => b.Key.StartsWith("blobs/sha256/", StringComparison.Ordinal)))
            {
                Assert.Equal(name["blobs/sha256/".Length..], Convert.ToHexStringLower(SHA256.HashData(bytes)));
            }

            using var index = JsonDocument.Parse(blobs["index.json"]);
            var entry = Assert.Single(index.RootElement.GetProperty("manifests").EnumerateArray());
            Assert.Equal("application/vnd.oci.image.manifest.v1+json", entry.GetProperty("mediaType").GetString());
            Assert.Contains(settings.Tags, t => entry.GetProperty("annotations").GetProperty("org.opencontainers.image.ref.name").GetString() == t);
            using var manifest = JsonDocument.Parse(Blob(blobs, entry.GetProperty("digest").GetString()!));
            var layers = manifest.RootElement.GetProperty("layers").EnumerateArray().ToList();
            Assert.True(layers.Count >= 2, $"{project}: expected the base's layers and the app's, found {layers.Count}");
            using var config = JsonDocument.Parse(Blob(blobs, manifest.RootElement.GetProperty("config").GetProperty("digest").GetString()!));
            Assert.Equal("amd64", config.RootElement.GetProperty("architecture").GetString());
            Assert.Equal("linux", config.RootElement.GetProperty("os").GetString());
            var image = config.RootElement.GetProperty("config");
            Assert.Equal(["dotnet", $"/app/{project}.dll"], image.GetProperty("Entrypoint").EnumerateArray().Select(e => e.GetString()));
            var port = settings.Ports.Single();
            Assert.Equal([$"{port}/tcp"], image.GetProperty("ExposedPorts").EnumerateObject().Select(p => p.Name));
            var environment = image.GetProperty("Env").EnumerateArray().Select(e => e.GetString()!).ToList();
            Assert.Contains($"ASPNETCORE_HTTP_PORTS={port}", environment);
            foreach (var (key, value) in settings.Environment)
            {
                Assert.Contains($"{key}={value}", environment);
            }

            Assert.NotEqual("0", image.GetProperty("User").GetString());
            Assert.NotEqual("root", image.GetProperty("User").GetString());

            // The app's own layer holds the service's entry assembly and its configuration.
            var appLayer = Files(Blob(blobs, layers[^1].GetProperty("digest").GetString()!));
            Assert.Contains($"app/{project}.dll", appLayer);
            Assert.Contains("app/appsettings.json", appLayer);
        }
    }

    private static byte[] Blob(Dictionary<string, byte[]> blobs, string digest) => blobs[$"blobs/sha256/{digest["sha256:".Length..]}"];

    private static Dictionary<string, byte[]> ReadArchive(string path)
    {
        Assert.True(File.Exists(path), $"no archive at {path}");
        var entries = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        using var reader = new TarReader(File.OpenRead(path));
        while (reader.GetNextEntry() is { } entry)
        {
            if (entry.DataStream is { } data)
            {
                using var copy = new MemoryStream();
                data.CopyTo(copy);
                entries[entry.Name.TrimStart('.', '/')] = copy.ToArray();
            }
        }

        return entries;
    }

    private static HashSet<string> Files(byte[] gzippedLayer)
    {
        using var reader = new TarReader(new GZipStream(new MemoryStream(gzippedLayer), CompressionMode.Decompress));
        var names = new HashSet<string>(StringComparer.Ordinal);
        while (reader.GetNextEntry() is { } entry)
        {
            names.Add(entry.Name.TrimStart('.', '/'));
        }

        return names;
    }
}
