namespace Library.LendingService.Loans;

/// <summary>
/// A job that runs every minute on the service's <see cref="TimeProvider"/> (tests move a fake
/// clock): a failed tick is logged and the next one comes a minute later. Every replica runs it;
/// the ticks claim their rows so that is safe.
/// </summary>
public abstract class MinuteClock(TimeProvider time, ILogger logger) : BackgroundService
{
    public static readonly TimeSpan Interval = TimeSpan.FromMinutes(1);

    /// <summary>The service's clock, for the ticks too.</summary>
    protected TimeProvider Time { get; } = time;

    /// <summary>The job's name in the log line of a failed tick.</summary>
    protected abstract string Name { get; }

    public abstract Task TickAsync(CancellationToken ct);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval, Time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                await TickAsync(stoppingToken);
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
            {
                logger.LogWarning(ex, "{Clock} tick failed; next in {Interval}", Name, Interval);
            }
        }
    }
}
