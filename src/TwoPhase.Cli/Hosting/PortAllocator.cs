using System.Net;
using System.Net.Sockets;

namespace TwoPhase.Cli.Hosting;

/// <summary>Checks and picks loopback ports for the services.</summary>
public static class PortAllocator
{
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
    /// Three ports the OS hands out as free. They are released before the services bind them, so
    /// another process could take one in between; the readiness wait then fails with a clear error.
    /// </summary>
    public static ServicePorts PickFree()
    {
        var listeners = Enumerable.Range(0, 3).Select(_ => new TcpListener(IPAddress.Loopback, 0)).ToList();
        try
        {
            foreach (var l in listeners)
            {
                l.Start();
            }

            var ports = listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port).ToList();
            return new ServicePorts(ports[0], ports[1], ports[2]);
        }
        finally
        {
            foreach (var l in listeners)
            {
                l.Stop();
            }
        }
    }
}
