using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Library.ServiceDefaults;

/// <summary>
/// Gives back to the OS what the GC kept committed after a burst, once the process is quiet.
/// <para>
/// Why: the workstation GC collects gen2 only when gen2's own budget runs out. During a burst
/// (the 500-reader borrow race: 250 requests per lending replica, each waiting seconds for one of
/// 32 connections) every request's state survives gen0 and gen1 and lands in gen2; afterwards
/// the process is nearly idle, allocates too little to reach a gen2 collection, and keeps that
/// garbage committed for hours: a lending replica held 38 MB committed for 13 MB live
/// (bench/README.md, "Memory, fourth pass"). Like the JVM's periodic G1 collection (JEP 346), one
/// blocking, compacting, aggressive collection (<see cref="GCCollectionMode.Aggressive"/>: it also
/// decommits the freed regions at once) runs when the process has been quiet for a check period
/// and the GC holds <see cref="TrimOptions.GrowthBytes"/> more than the least it held since the
/// last trim. It never runs under load (a pause there would cost latency) and at most once per
/// <see cref="TrimOptions.MinSecondsBetweenTrims"/>.
/// </para>
/// Configuration (section <c>Memory</c>): <c>IdleTrim</c> (true; false in the Testing environment), <c>CheckSeconds</c> (5),
/// <c>QuietBytesPerSecond</c> (256 KiB: allocations per second below which the process is quiet;
/// an idle lending replica allocates about 80 KiB/s, its clocks and relay, a replica serving a few
/// requests a second more, and a trim's pause should not land on those),
/// <c>GrowthBytes</c> (8 MiB), <c>MinSecondsBetweenTrims</c> (30), <c>NativeHeap</c> (true: then glibc's
/// <c>malloc_trim</c>: 6-7 MiB more off a lending replica after the burst, 17 off the gateway).
/// </summary>
public static partial class IdleMemoryTrim
{
    public const string SectionName = "Memory";

    public static TBuilder AddIdleMemoryTrim<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        var options = builder.Configuration.GetSection(SectionName).Get<TrimOptions>() ?? new TrimOptions();
        // Off by default in the Testing environment: many hosts share one test process, whose
        // collections are none of a host's business.
        if (builder.Configuration.GetValue<bool?>($"{SectionName}:IdleTrim") ?? !builder.Environment.IsEnvironment("Testing"))
        {
            // The process's own clock, not the application's TimeProvider (tests move that one by days).
            builder.Services.AddHostedService(sp => new Trimmer(new TrimPolicy(options), options.NativeHeap, TimeProvider.System,
                sp.GetRequiredService<ILogger<Trimmer>>()));
        }
        return builder;
    }

    public sealed class TrimOptions
    {
        public double CheckSeconds { get; set; } = 5;

        public long QuietBytesPerSecond { get; set; } = 256L << 10;

        public long GrowthBytes { get; set; } = 8L << 20;

        public double MinSecondsBetweenTrims { get; set; } = 30;

        /// <summary>After the collection, glibc's <c>malloc_trim</c>: free pages inside the native heaps back too.</summary>
        public bool NativeHeap { get; set; } = true;
    }

    /// <summary>What the GC says at one check: bytes allocated so far, bytes committed.</summary>
    public readonly record struct MemorySample(long AllocatedBytes, long CommittedBytes)
    {
        public static MemorySample Now() => new(GC.GetTotalAllocatedBytes(), GC.GetGCMemoryInfo().TotalCommittedBytes);
    }

    /// <summary>The decision alone (pure: the samples and the time are given), so it can be tested.</summary>
    public sealed class TrimPolicy(TrimOptions options)
    {
        private MemorySample? _last;
        private long _least = long.MaxValue;
        private DateTimeOffset? _lastTrim;

        public TimeSpan CheckPeriod => TimeSpan.FromSeconds(Math.Max(0.1, options.CheckSeconds));

        /// <summary>Whether to trim now, given this check's sample (taken one check period after the last).</summary>
        public bool ShouldTrim(MemorySample sample, DateTimeOffset now)
        {
            var last = _last;
            _last = sample;
            _least = Math.Min(_least, sample.CommittedBytes);
            if (last is null)
            {
                return false;
            }
            var quiet = sample.AllocatedBytes - last.Value.AllocatedBytes <= options.QuietBytesPerSecond * CheckPeriod.TotalSeconds;
            return quiet
                && sample.CommittedBytes - _least >= options.GrowthBytes
                && (_lastTrim is not { } t || now - t >= TimeSpan.FromSeconds(options.MinSecondsBetweenTrims));
        }

        /// <summary>After a trim: what it left is the new least.</summary>
        public void Trimmed(MemorySample after, DateTimeOffset now)
        {
            _last = after;
            _least = after.CommittedBytes;
            _lastTrim = now;
        }
    }

    private sealed partial class Trimmer(TrimPolicy policy, bool nativeHeap, TimeProvider time, ILogger<Trimmer> logger) : BackgroundService
    {
        protected override async Task ExecuteAsync(CancellationToken stoppingToken)
        {
            try
            {
                while (!stoppingToken.IsCancellationRequested)
                {
                    await Task.Delay(policy.CheckPeriod, time, stoppingToken);
                    var before = MemorySample.Now();
                    if (!policy.ShouldTrim(before, time.GetUtcNow()))
                    {
                        continue;
                    }
                    var started = time.GetTimestamp();
                    GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
                    if (nativeHeap)
                    {
                        NativeHeap.Trim();
                    }
                    var after = MemorySample.Now();
                    policy.Trimmed(after, time.GetUtcNow());
                    LogTrimmed(logger, before.CommittedBytes >> 20, after.CommittedBytes >> 20,
                        GC.GetGCMemoryInfo().HeapSizeBytes >> 20, time.GetElapsedTime(started).TotalMilliseconds);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                // Stopping.
            }
        }

        [LoggerMessage(Level = LogLevel.Information, Message = "Quiet after a burst: full aggressive GC, committed {BeforeMiB} -> {AfterMiB} MiB (heap {HeapMiB} MiB) in {Milliseconds} ms")]
        private static partial void LogTrimmed(ILogger logger, long beforeMiB, long afterMiB, long heapMiB, double milliseconds);
    }

    /// <summary>glibc's <c>malloc_trim(0)</c> where there is one (not on musl, Windows or macOS).</summary>
    private static class NativeHeap
    {
        private static bool _missing = !OperatingSystem.IsLinux();

        public static void Trim()
        {
            if (_missing)
            {
                return;
            }
            try
            {
                _ = MallocTrim(0);
            }
            catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
            {
                _missing = true;
            }
        }

        [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "malloc_trim")]
        [System.Runtime.InteropServices.DefaultDllImportSearchPaths(System.Runtime.InteropServices.DllImportSearchPath.SafeDirectories)]
        private static extern int MallocTrim(nuint pad);
    }
}
