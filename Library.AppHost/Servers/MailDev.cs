using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Library.AppHost.Servers;

/// <summary>
/// The mail server the lending service sends notices to: MailDev, a real SMTP server that keeps
/// every message for its web UI and REST API instead of delivering it. Its connection string has
/// the format of Aspire's community MailDev/Mailpit integrations, <c>Endpoint=smtp://host:port</c>,
/// so <c>WithReference(mail)</c> gives a service <c>ConnectionStrings__mail</c>. A deployment
/// passes a real mail server's string under the same name instead.
/// </summary>
internal interface IMailServerResource : IResourceWithConnectionString
{
    EndpointReference Smtp { get; }
}

/// <summary>MailDev from npm (maildev 3.x, in <c>{repository}/.local/tools/maildev</c>), run by DCP with Node.js.</summary>
internal sealed class MailDevProcessResource(string name, string command, string root)
    : ExecutableResource(name, command, root), IMailServerResource
{
    public EndpointReference Smtp => new(this, MailDev.SmtpEndpoint);
    public EndpointReference Http => new(this, MailDev.HttpEndpoint);

    public ReferenceExpression ConnectionStringExpression => MailDev.ConnectionString(Smtp);
}

/// <summary>The <c>maildev/maildev</c> image (SMTP 1025, web 1080) where containers run, and in the manifest.</summary>
internal sealed class MailDevContainerResource(string name) : ContainerResource(name), IMailServerResource
{
    public EndpointReference Smtp => new(this, MailDev.SmtpEndpoint);

    public ReferenceExpression ConnectionStringExpression => MailDev.ConnectionString(Smtp);
}

internal static class MailDev
{
    public const string SmtpEndpoint = "smtp";
    public const string HttpEndpoint = "http";
    public const string Version = "3.0.0";
    public const string Image = "maildev/maildev";
    public const string ImageTag = "2.2.1";

    public static ReferenceExpression ConnectionString(EndpointReference smtp) =>
        ReferenceExpression.Create($"Endpoint=smtp://{smtp.Property(EndpointProperty.Host)}:{smtp.Property(EndpointProperty.Port)}");

    public static IResourceBuilder<MailDevContainerResource> AddMailDevContainer(this IDistributedApplicationBuilder builder, string name)
    {
        var resource = new MailDevContainerResource(name);
        return builder.AddResource(resource)
            .WithImage(Image, ImageTag)
            .WithImageRegistry("docker.io")
            .WithEndpoint(targetPort: 1025, name: SmtpEndpoint, scheme: "tcp")
            .WithHttpEndpoint(targetPort: 1080, name: HttpEndpoint)
            .WithIconName("Mail");
    }

    /// <summary>
    /// MailDev as a process: installed with npm into the repository's git-ignored <c>.local/tools</c>
    /// when missing (as eng/lib/servers.sh does), listening on 127.0.0.1 on the ports Aspire
    /// allocates, keeping the messages in <c>{data}/maildev/mail</c> across restarts. Healthy once
    /// the SMTP greeting comes, which <c>WaitFor</c> waits on.
    /// </summary>
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public static IResourceBuilder<MailDevProcessResource> AddMailDevProcess(
        this IDistributedApplicationBuilder builder, string name, string dataRoot, string repository)
    {
        var tools = Path.Combine(repository, ".local", "tools", "maildev");
        var script = Path.Combine(tools, "node_modules", "maildev", "dist", "bin", "maildev.js");
        var root = Path.Combine(dataRoot, "maildev");
        var mailFolder = Path.Combine(root, "mail");
        const string node = "/usr/bin/node";
        var resource = new MailDevProcessResource(name, Os.Env, root);
        var args = Os.CleanArguments(null, node, []);
        args.AddRange([script,
            "--ip", "127.0.0.1", "--smtp", ReferenceExpression.Create($"{resource.Smtp.Property(EndpointProperty.TargetPort)}"),
            "--web-ip", "127.0.0.1", "--web", ReferenceExpression.Create($"{resource.Http.Property(EndpointProperty.TargetPort)}"),
            "--mail-directory", mailFolder]);

        builder.Eventing.Subscribe<BeforeResourceStartedEvent>(resource, async (e, ct) =>
        {
            Os.Require(node, "Node.js (package nodejs)");
            if (!File.Exists(script))
            {
                Directory.CreateDirectory(tools);
                await Os.RunAsync(null, tools, "npm", ["install", "--prefix", tools, "--no-audit", "--no-fund", "--loglevel=error", $"maildev@{Version}"], ct);
            }
            Directory.CreateDirectory(mailFolder);
        });

        var healthKey = $"{name}_check";
        builder.Services.AddHealthChecks().Add(new HealthCheckRegistration(healthKey, _ => new DelegateHealthCheck(async ct =>
        {
            await SmtpGreetingAsync("127.0.0.1", resource.Smtp.Port, ct);
            return HealthCheckResult.Healthy();
        }), failureStatus: null, tags: null));

        return builder.AddResource(resource)
            .WithEndpoint(name: SmtpEndpoint, scheme: "tcp", isProxied: false)
            .WithHttpEndpoint(name: HttpEndpoint, isProxied: false)
            // npm's maildev 3 serves its web UI at /index.html (its / answers 404).
            .WithUrlForEndpoint(HttpEndpoint, url => { url.Url = "/index.html"; url.DisplayText = "Mail received (MailDev)"; })
            .WithArgs(context =>
            {
                foreach (var a in args)
                {
                    context.Args.Add(a);
                }
            })
            .WithIconName("Mail")
            .WithHealthCheck(healthKey)
            .ExcludeFromManifest();
    }

    /// <summary>Connects and reads the server's greeting; throws unless it is <c>220</c>.</summary>
    private static async Task SmtpGreetingAsync(string host, int port, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(3));
        using var client = new TcpClient();
        await client.ConnectAsync(host, port, timeout.Token);
        var buffer = new byte[512];
        var read = await client.GetStream().ReadAsync(buffer, timeout.Token);
        var greeting = Encoding.ASCII.GetString(buffer, 0, read);
        if (!greeting.StartsWith("220", StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"The mail server answered '{greeting.Trim()}', not 220.");
        }
    }
}
