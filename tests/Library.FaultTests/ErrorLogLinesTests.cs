namespace Library.FaultTests;

/// <summary>
/// What the suite prints when a fault produced 5xx answers (<see cref="RealLibrary.ErrorLogLines"/>),
/// over logs written here (no stack is started).
/// </summary>
public sealed class ErrorLogLinesTests
{
    [Fact]
    public void A_failed_requests_entry_comes_first_and_the_rest_is_counted_by_file_and_category()
    {
        var stack = new RealLibrary();
        try
        {
            var logs = Directory.CreateDirectory(Path.Combine(stack.Data, "logs")).FullName;
            static string Entry(string level, string category, string message) =>
                $$"""{"Timestamp":"2026-12-03T10:00:00.000Z","EventId":1,"LogLevel":"{{level}}","Category":"{{category}}","Message":"{{message}}"}""";
            // A replica's start-up noise first, in file order, then the failed request.
            File.WriteAllLines(Path.Combine(logs, "bookservice-1.log"),
                Enumerable.Range(0, 30).Select(i => Entry("Error", "StackExchange.Redis.ConnectionMultiplexer", $"UnableToConnect {i}")));
            File.WriteAllLines(Path.Combine(logs, "lendingservice-1.log"),
            [
                Entry("Information", "Microsoft.Hosting.Lifetime", "Application started."),
                Entry("Error", "Microsoft.AspNetCore.Diagnostics.ExceptionHandlerMiddleware", "An unhandled exception has occurred while executing the request."),
                Entry("Error", "Microsoft.Extensions.Diagnostics.HealthChecks.DefaultHealthCheckService", "Health check failed (draining)"),
            ]);

            var (count, lines) = stack.ErrorLogLines(10);

            Assert.Equal(31, count);
            Assert.Equal("-- requests that failed (1 shown):", lines[0]);
            Assert.StartsWith("lendingservice-1.log: ", lines[1], StringComparison.Ordinal);
            Assert.Contains("ExceptionHandlerMiddleware", lines[1], StringComparison.Ordinal);
            Assert.Equal("-- by log file and category (count, first entry):", lines[2]);
            Assert.StartsWith("bookservice-1.log StackExchange.Redis.ConnectionMultiplexer x30: ", lines[3], StringComparison.Ordinal);
            Assert.Contains("UnableToConnect 0", lines[3], StringComparison.Ordinal);
            Assert.StartsWith("lendingservice-1.log Microsoft.AspNetCore.Diagnostics.ExceptionHandlerMiddleware x1: ", lines[4], StringComparison.Ordinal);
            Assert.Equal(5, lines.Count);
        }
        finally
        {
            Directory.Delete(stack.Data, recursive: true);
        }
    }
}
