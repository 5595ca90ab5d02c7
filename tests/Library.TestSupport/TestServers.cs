namespace Library.TestSupport;

/// <summary>
/// The real PostgreSQL, Redis, RabbitMQ and MailDev that eng/test.sh starts for the test run (on their own
/// ports, in a temporary folder) and announces through environment variables.
/// </summary>
public static class TestServers
{
    /// <summary>Npgsql keyword string of a superuser, used only to create and drop test databases.</summary>
    public static string PostgresAdmin => Require("LIBRARY_TEST_POSTGRES");

    /// <summary>StackExchange.Redis connection string.</summary>
    public static string Redis => Require("LIBRARY_TEST_REDIS");

    /// <summary><c>amqp://user:pass@host:port/vhost</c>.</summary>
    public static string RabbitMQ => Require("LIBRARY_TEST_RABBITMQ");

    /// <summary>The test mail server's SMTP address, <c>Endpoint=smtp://127.0.0.1:PORT</c> (MailDev).</summary>
    public static string Mail => Require("LIBRARY_TEST_MAIL");

    /// <summary>MailDev's web/REST address, <c>http://127.0.0.1:PORT</c> (GET /api/email).</summary>
    public static string MailApi => Require("LIBRARY_TEST_MAIL_API");

    private static string Require(string name) =>
        Environment.GetEnvironmentVariable(name) is { Length: > 0 } value
            ? value
            : throw new InvalidOperationException(
                $"{name} is not set. Integration tests run against real servers: run them with eng/test.sh, " +
                "which starts PostgreSQL, Redis, RabbitMQ and MailDev and sets LIBRARY_TEST_POSTGRES, LIBRARY_TEST_REDIS, LIBRARY_TEST_RABBITMQ, LIBRARY_TEST_MAIL and LIBRARY_TEST_MAIL_API.");
}
