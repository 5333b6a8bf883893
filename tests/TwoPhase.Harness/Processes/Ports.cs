using System.Net;
using System.Net.Sockets;

namespace TwoPhase.Harness;

/// <summary>Checks and picks loopback ports for the services.</summary>
public static class PortAllocator
{
    private static readonly HashSet<int> Given = [];

    /// <summary>Whether nothing listens on <paramref name="port"/> on loopback right now.</summary>
    public static bool IsFree(int port)
    {
        try
        {
            var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            listener.Stop();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>
    /// A port the OS hands out as free, never the defaults 8000-8002 (a developer's own services) and never one this
    /// process was given before. It is released before the service binds it, so another process could take it in
    /// between; the service's start then fails with a clear error.
    /// </summary>
    public static int Next()
    {
        lock (Given)
        {
            for (var attempt = 0; attempt < 100; attempt++)
            {
                using var listener = new TcpListener(IPAddress.Loopback, 0);
                listener.Start();
                var port = ((IPEndPoint)listener.LocalEndpoint).Port;
                listener.Stop();
                if (!ServicePorts.Default.All().Contains(port) && Given.Add(port))
                {
                    return port;
                }
            }

            throw new ServiceStartException("No free loopback port found in 100 attempts.");
        }
    }

    /// <summary>Three free ports (see <see cref="Next"/>).</summary>
    public static ServicePorts PickFree() => new(Next(), Next(), Next());
}
