using System.Text.RegularExpressions;

namespace TwoPhase.Deployment.Tests;

/// <summary>
/// What cannot run here (Docker Compose, a Kubernetes cluster) is checked as far as it can be: the files parse, and
/// their images, ports, variables and probe paths agree with the code and the csproj container settings.
/// </summary>
public sealed partial class DeploymentFilesTests
{
    // Compose service / Kubernetes Deployment name -> project. The Kubernetes names are the image names' last part.
    private static readonly Dictionary<string, string> Projects = new(StringComparer.Ordinal)
    {
        ["order-service"] = "OrderService",
        ["storage-service"] = "StorageService",
        ["delivery-service"] = "DeliveryService",
    };

    private static string Compose => Repo.PathOf("deploy", "compose.yaml");

    private static IEnumerable<string> KubernetesFiles => Directory.GetFiles(Repo.PathOf("deploy", "k8s"), "*.yaml").Order(StringComparer.Ordinal);

    [Fact]
    public void EveryYamlFileUnderDeploy_Parses()
    {
        var files = Directory.GetFiles(Repo.PathOf("deploy"), "*.*", SearchOption.AllDirectories)
            .Where(f => f.EndsWith(".yaml", StringComparison.Ordinal) || f.EndsWith(".yml", StringComparison.Ordinal)).ToList();
        Assert.Contains(files, f => f.EndsWith("compose.yaml", StringComparison.Ordinal));
        Assert.True(files.Count >= 8, $"expected compose, Prometheus, collector and the Kubernetes manifests, found {files.Count}");
        foreach (var file in files)
        {
            var documents = Yaml.Documents(file);
            Assert.True(documents.Count > 0 && documents.All(d => d is Dictionary<object, object?>), $"{file}: every document must be a mapping");
        }
    }

    [Fact]
    public async Task Compose_ImagesPortsAndParticipantUrls_AgreeWithTheServices()
    {
        var settings = await ContainerSettings.ForAllAsync();
        var services = Yaml.Map(Yaml.At(Yaml.Documents(Compose).Single(), "services"), "compose services");
        foreach (var (name, project) in Projects)
        {
            var service = Yaml.Map(services[name], name);
            var container = settings[project];
            var image = Yaml.Text(service["image"], $"{name}.image");
            Assert.True(container.Names(image), $"compose {name}: image {image} is not {container.Repository}:{string.Join("|", container.Tags)}");
            var port = Assert.Single(container.Ports);
            var environment = ComposeEnvironment(service, name);
            Assert.Equal(port.ToString(System.Globalization.CultureInfo.InvariantCulture), environment["ASPNETCORE_HTTP_PORTS"]);
            var published = Yaml.List(service["ports"], $"{name}.ports").Select(p => Yaml.Text(p, $"{name}.ports")).ToList();
            Assert.Contains($"127.0.0.1:{port}:{port}", published);
        }

        // The URLs each service is given name another compose service at the port it listens on.
        var ports = settings.ToDictionary(s => Projects.Single(p => p.Value == s.Key).Key, s => s.Value.Ports.Single());
        foreach (var (name, _) in Projects)
        {
            foreach (var (key, value) in ComposeEnvironment(Yaml.Map(services[name], name), name).Where(kv => kv.Key.EndsWith("Url", StringComparison.Ordinal)))
            {
                var url = new Uri(value);
                Assert.True(ports.TryGetValue(url.Host, out var expected) && expected == url.Port, $"compose {name}: {key}={value} names no service at its port");
            }
        }

        var participants = ComposeEnvironment(Yaml.Map(services["order-service"], "order-service"), "order-service");
        Assert.Equal("storage", participants["TwoPhase__Coordinator__Participants__0__Name"]);
        Assert.Equal("delivery", participants["TwoPhase__Coordinator__Participants__1__Name"]);
    }

    [Fact]
    public void Compose_PostgresHoldsOneDatabasePerService_AndNoPreparedTransactions()
    {
        var services = Yaml.Map(Yaml.At(Yaml.Documents(Compose).Single(), "services"), "compose services");
        var databases = Projects.Keys.Select(name => ConnectionDatabase(ComposeEnvironment(Yaml.Map(services[name], name), name)["TwoPhase__Database__ConnectionString"])).ToList();
        Assert.Equal(databases.Count, databases.Distinct(StringComparer.Ordinal).Count());
        var init = File.ReadAllText(Repo.PathOf("deploy", "postgres", "init.sql"));
        var postgres = Yaml.Map(services["postgres"], "postgres");
        var created = CreateDatabase().Matches(init).Select(m => m.Groups[1].Value)
            .Append(Yaml.Text(Yaml.At(postgres, "environment", "POSTGRES_DB"), "POSTGRES_DB"));
        Assert.Equal(databases.Order(StringComparer.Ordinal), created.Order(StringComparer.Ordinal));

        // The code never issues PREPARE TRANSACTION (a participant's "prepared" is a ledger row), so the server needs none.
        var sources = Directory.GetFiles(Repo.PathOf("src"), "*.cs", SearchOption.AllDirectories).Where(f => !f.Contains("/obj/", StringComparison.Ordinal));
        Assert.DoesNotContain(sources, f => PrepareTransaction().IsMatch(File.ReadAllText(f)));
        var command = Yaml.List(postgres["command"], "postgres.command").Select(c => Yaml.Text(c, "postgres.command"));
        Assert.Contains("max_prepared_transactions=0", command);
    }

    [Fact]
    public async Task Kubernetes_ImagesPortsProbesAndSecrets_AgreeWithTheServices()
    {
        var settings = await ContainerSettings.ForAllAsync();
        var documents = KubernetesFiles.SelectMany(f => Yaml.Documents(f).Select(d => (File: Path.GetFileName(f), Doc: Yaml.Map(d, f)))).ToList();
        var secret = documents.Single(d => Kind(d.Doc) == "Secret").Doc;
        var secretName = Yaml.Text(Yaml.At(secret, "metadata", "name"), "Secret name");
        var secretKeys = Yaml.Map(Yaml.At(secret, "stringData"), "Secret stringData").Keys.Cast<string>().ToHashSet(StringComparer.Ordinal);
        var servicePorts = documents.Where(d => Kind(d.Doc) == "Service")
            .ToDictionary(d => Yaml.Text(Yaml.At(d.Doc, "metadata", "name"), "Service name"), d => Yaml.List(Yaml.At(d.Doc, "spec", "ports"), "Service ports"));
        var connections = new List<string>();
        foreach (var (name, project) in Projects)
        {
            var deployment = documents.Single(d => Kind(d.Doc) == "Deployment" && Yaml.At(d.Doc, "metadata", "name") as string == name).Doc;
            var container = Yaml.Map(Assert.Single(Yaml.List(Yaml.At(deployment, "spec", "template", "spec", "containers"), name)), name);
            var built = settings[project];
            var image = Yaml.Text(container["image"], $"{name}.image");
            Assert.True(built.Names(image), $"k8s {name}: image {image} is not {built.Repository}:{string.Join("|", built.Tags)}");
            var port = Yaml.Map(Assert.Single(Yaml.List(container["ports"], $"{name}.ports")), $"{name}.ports");
            Assert.Equal(built.Ports.Single().ToString(System.Globalization.CultureInfo.InvariantCulture), Yaml.Text(port["containerPort"], "containerPort"));
            Assert.Equal(Yaml.Text(port["containerPort"], "containerPort"), KubernetesEnvironment(container).Values["ASPNETCORE_HTTP_PORTS"]);
            Assert.Equal("/health/ready", Yaml.At(container, "readinessProbe", "httpGet", "path"));
            Assert.Equal("/health/live", Yaml.At(container, "livenessProbe", "httpGet", "path"));

            // The shared secret and the connection string come from the Secret, by keys it has.
            var (_, fromSecret) = KubernetesEnvironment(container);
            Assert.Equal(secretName, fromSecret["TwoPhase__Secret"].Name);
            Assert.Contains(fromSecret["TwoPhase__Secret"].Key, secretKeys);
            var connection = fromSecret["TwoPhase__Database__ConnectionString"];
            Assert.Equal(secretName, connection.Name);
            Assert.Contains(connection.Key, secretKeys);
            connections.Add(ConnectionDatabase((string)Yaml.At(secret, "stringData", connection.Key)!));

            var servicePort = Yaml.Map(Assert.Single(servicePorts[name]), $"Service {name}");
            Assert.Equal(Yaml.Text(port["containerPort"], "containerPort"), Yaml.Text(servicePort["port"], "Service port"));
            Assert.Equal(Yaml.Text(port["name"], "port name"), Yaml.Text(servicePort["targetPort"], "targetPort"));
        }

        Assert.Equal(connections.Count, connections.Distinct(StringComparer.Ordinal).Count());
    }

    [Fact]
    public async Task EveryVariableInTheManifestsAndImages_IsAKeyTheServicesRead()
    {
        var variables = new List<(string Where, string Name)>();
        var services = Yaml.Map(Yaml.At(Yaml.Documents(Compose).Single(), "services"), "compose services");
        foreach (var name in Projects.Keys)
        {
            variables.AddRange(ComposeEnvironment(Yaml.Map(services[name], name), name).Keys.Select(k => ($"compose {name}", k)));
        }

        foreach (var file in KubernetesFiles)
        {
            foreach (var doc in Yaml.Documents(file).Select(d => Yaml.Map(d, file)).Where(d => Kind(d) == "Deployment"))
            {
                foreach (var container in Yaml.List(Yaml.At(doc, "spec", "template", "spec", "containers"), file))
                {
                    var (values, secrets) = KubernetesEnvironment(Yaml.Map(container, file));
                    variables.AddRange(values.Keys.Concat(secrets.Keys).Select(k => (Path.GetFileName(file), k)));
                }
            }
        }

        foreach (var (project, container) in await ContainerSettings.ForAllAsync())
        {
            variables.AddRange(container.Environment.Keys.Select(k => ($"{project}.csproj", k)));
        }

        Assert.True(variables.Count > 20, $"found only {variables.Count} variables");
        var unread = variables.Select(v => (v.Where, v.Name, Why: ConfigurationKeys.WhyUnread(v.Name))).Where(v => v.Why is not null).ToList();
        Assert.True(unread.Count == 0, string.Join('\n', unread.Select(u => $"{u.Where}: {u.Name}: {u.Why}")));
    }

    [Fact]
    public void KeyCheck_RefusesAKeyNoServiceReads()
    {
        // The check above must be able to fail: a misspelt key, a key of the old root sections, a section without a value.
        Assert.NotNull(ConfigurationKeys.WhyUnread("TwoPhase__Coordinator__Participants__0__Adress"));
        Assert.NotNull(ConfigurationKeys.WhyUnread("Nonsense__Key"));
        Assert.NotNull(ConfigurationKeys.WhyUnread("TwoPhase__Coordinator__Participants"));
        Assert.Null(ConfigurationKeys.WhyUnread("TwoPhase__Secret"));
    }

    private static string? Kind(Dictionary<object, object?> doc) => Yaml.At(doc, "kind") as string;

    private static Dictionary<string, string> ComposeEnvironment(Dictionary<object, object?> service, string name) =>
        Yaml.Map(service["environment"], $"{name}.environment").ToDictionary(kv => (string)kv.Key, kv => Yaml.Text(kv.Value, $"{name}.{kv.Key}"), StringComparer.Ordinal);

    private static (Dictionary<string, string> Values, Dictionary<string, (string Name, string Key)> Secrets) KubernetesEnvironment(Dictionary<object, object?> container)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        var secrets = new Dictionary<string, (string, string)>(StringComparer.Ordinal);
        foreach (var entry in Yaml.List(container["env"], "env").Select(e => Yaml.Map(e, "env")))
        {
            var name = Yaml.Text(entry["name"], "env name");
            if (Yaml.At(entry, "valueFrom", "secretKeyRef") is Dictionary<object, object?> reference)
            {
                secrets[name] = (Yaml.Text(reference["name"], name), Yaml.Text(reference["key"], name));
            }
            else
            {
                values[name] = Yaml.Text(entry["value"], name);
            }
        }

        return (values, secrets);
    }

    private static string ConnectionDatabase(string connectionString) =>
        new Npgsql.NpgsqlConnectionStringBuilder(connectionString).Database ?? throw new InvalidDataException($"no Database in {connectionString}");

    [GeneratedRegex(@"CREATE DATABASE (\w+);")]
    private static partial Regex CreateDatabase();

    [GeneratedRegex(@"PREPARE TRANSACTION|COMMIT PREPARED", RegexOptions.IgnoreCase)]
    private static partial Regex PrepareTransaction();
}
