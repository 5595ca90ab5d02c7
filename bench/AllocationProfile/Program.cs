using System.Diagnostics.Tracing;
using System.Globalization;
using Microsoft.Diagnostics.NETCore.Client;
using Microsoft.Diagnostics.Tracing.Etlx;
using Microsoft.Diagnostics.Tracing.Parsers;
using Microsoft.Diagnostics.Tracing.Parsers.Clr;

// AllocationProfile PID SECONDS TRACE_FILE [TYPE]   (PID "-": read TRACE_FILE again)
//
// Listens to the runtime's allocation samples of a running .NET process for SECONDS (EventPipe,
// the GC keyword at verbose level: a GCAllocationTick about every 100 KB a heap allocates, with
// the type of the object that crossed the mark and the stack that allocated it; each sample stands
// for the bytes since the last one, so the shares are estimates, good to a few per cent at
// thousands of samples), writes the trace to TRACE_FILE, then prints:
//   - what was allocated (MiB, MiB/s; bench/allocations.sh divides by the requests);
//   - the top types;
//   - who allocates: each sample goes to the innermost component on its stack that stands for a
//     piece of work (EF's SaveChanges, a FromSql query, the outbox relay, JWT validation, Kestrel,
//     ...; Npgsql, System.Text.Json and the service's own code count as layers under them, so
//     they stand alone only where no such component is on the stack). Innermost, because an async
//     continuation runs on the stack of whatever completed the task it awaited: the outer frames
//     of a stack are often not its caller;
//   - the same, with the innermost three components and layers, for the detail;
//   - the top stacks (10 frames) of TYPE (System.String unless given; * for every type).
//
// AllocationProfile perf PERF_SCRIPT_TEXT HZ   (bench/cpu-profile.sh)
//
// The same attribution for CPU samples: `perf script` of a `perf record -g` taken with the
// runtime's perf map on (JIT-compiled frames named). Each sample goes to the innermost piece of
// work on its stack, as above (a socket write's kernel frames to the Npgsql or Kestrel call that
// made it); a sample with managed frames of no listed component goes to ".NET code of no listed
// component", and one with no managed frame to the runtime (GC, JIT, thread pool), the kernel or
// the C library by its innermost frame.
var culture = CultureInfo.InvariantCulture;
if (args.Length > 0 && args[0] == "perf")
{
    return args.Length == 3 && int.TryParse(args[2], culture, out var hz) && hz > 0 ? CpuProfile(args[1], hz) : Usage();
}
if (args.Length < 3)
{
    return Usage();
}
var seconds = int.Parse(args[1], culture);
var file = args[2];
var focus = args.Length > 3 ? args[3] : "System.String";

if (args[0] != "-")
{
    var client = new DiagnosticsClient(int.Parse(args[0], culture));
    EventPipeProvider[] providers = [new("Microsoft-Windows-DotNETRuntime", EventLevel.Verbose, (long)ClrTraceEventParser.Keywords.GC)];
    // The rundown at the end names the JIT-compiled methods of the stacks.
    using var session = client.StartEventPipeSession(providers, requestRundown: true);
    await using var output = File.Create(file);
    var copy = session.EventStream.CopyToAsync(output);
    await Task.Delay(TimeSpan.FromSeconds(seconds));
    await session.StopAsync(CancellationToken.None);
    await copy;
}

using var log = new TraceLog(TraceLog.CreateFromEventPipeDataFile(file));
var byType = new Dictionary<string, long>();
var byWho = new Dictionary<string, long>();
var byChain = new Dictionary<string, long>();
var byStack = new Dictionary<string, long>();
long total = 0;
// (TraceEvents enumerates as IEnumerable<TraceEvent> only: OfType would take its non-generic side.)
foreach (var sample in log.Events.Select(e => e as GCAllocationTickTraceData).Where(e => e is not null).Select(e => e!))
{
    var bytes = sample.AllocationAmount64;
    var type = sample.TypeName ?? "?";
    total += bytes;
    Add(byType, type, bytes);
    var methods = new List<string>();
    for (var frame = sample.CallStack(); frame is not null; frame = frame.Caller)
    {
        var method = frame.CodeAddress.FullMethodName;
        methods.Add(string.IsNullOrEmpty(method) ? frame.CodeAddress.ModuleName + "!?" : method);
    }
    var (who, frames) = Attribute(methods);
    Add(byWho, Who(who) ?? "(none of these)", bytes);
    Add(byChain, who.Count == 0 ? "(none of these)" : string.Join(" < ", who.Take(3)), bytes);
    if (focus == "*" || type == focus)
    {
        Add(byStack, type + "\n        " + string.Join("\n        ", frames), bytes);
    }
}

double MiB(long b) => b / 1024.0 / 1024.0;
Console.WriteLine(string.Create(culture, $"allocated (sampled) {MiB(total):F1} MiB in {seconds} s: {MiB(total) / seconds:F1} MiB/s"));
Print("types", byType, 20, total);
Print("who allocates (the innermost piece of work on the stack)", byWho, 20, total);
Print("the innermost three components and layers", byChain, 20, total);
Print($"stacks of {focus}", byStack, 12, total);
return 0;

static int Usage()
{
    Console.Error.WriteLine("usage: AllocationProfile PID|- SECONDS TRACE_FILE [TYPE]\n       AllocationProfile perf PERF_SCRIPT_TEXT HZ");
    return 2;
}

// The top shares of a total (bytes or samples), in per cent.
static void Print(string title, Dictionary<string, long> shares, int top, long total)
{
    Console.WriteLine();
    Console.WriteLine($"--- {title}");
    foreach (var (key, amount) in shares.OrderByDescending(p => p.Value).Take(top))
    {
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{amount * 100.0 / total,6:F1} %  {key}"));
    }
}

static void Add(Dictionary<string, long> shares, string key, long bytes) => shares[key] = shares.GetValueOrDefault(key) + bytes;

// The components a stack (innermost frame first) runs through, innermost first, and its first 10
// frames without the async machinery's own (they say nothing of who did the work).
static (List<string> Who, List<string> Frames) Attribute(IEnumerable<string> methods)
{
    var who = new List<string>();
    var frames = new List<string>();
    foreach (var method in methods)
    {
        if (frames.Count < 10 && !method.Contains("System.Runtime.CompilerServices.", StringComparison.Ordinal)
            && !method.Contains("System.Threading.ExecutionContext", StringComparison.Ordinal))
        {
            frames.Add(method.Length > 150 ? method[..150] : method);
        }
        if (Components.FirstOrDefault(c => method.Contains(c.Pattern, StringComparison.Ordinal)) is { Name: { } name } && !who.Contains(name))
        {
            who.Add(name);
        }
    }
    return (who, frames);
}

// The innermost piece of work, else the innermost layer.
static string? Who(List<string> who) => who.FirstOrDefault(w => !Layers.Contains(w)) ?? who.FirstOrDefault();

// `perf script` text: a header line per sample, then its frames ("address symbol (dso)"), innermost first.
static int CpuProfile(string file, int hz)
{
    var byWho = new Dictionary<string, long>();
    var byChain = new Dictionary<string, long>();
    long samples = 0;
    foreach (var block in File.ReadAllText(file).Split("\n\n", StringSplitOptions.RemoveEmptyEntries))
    {
        var lines = block.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        if (lines.Length < 2)
        {
            continue;
        }
        samples++;
        var frames = lines.Skip(1).Select(l => l.Trim()).Select(l => l[(l.IndexOf(' ', StringComparison.Ordinal) + 1)..]).ToList();
        var (who, _) = Attribute(frames);
        var innermost = frames[0];
        var native = frames.Any(Managed) ? "(.NET code of no listed component)"
            : innermost.Contains("kernel", StringComparison.Ordinal) ? "(the kernel, no managed frame)"
            : innermost.Contains("libcoreclr", StringComparison.Ordinal) || innermost.Contains("libclrjit", StringComparison.Ordinal) ? "(the runtime: GC, JIT, thread pool)"
            : innermost.Contains("libc.so", StringComparison.Ordinal) ? "(the C library)"
            : "(other native code)";
        Add(byWho, Who(who) ?? native, 1);
        Add(byChain, who.Count == 0 ? native : string.Join(" < ", who.Take(3)), 1);
    }
    if (samples == 0)
    {
        Console.Error.WriteLine($"no samples in {file}: perf record saw the process idle, or perf script wrote nothing");
        return 1;
    }
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"cpu samples {samples} at {hz} Hz: {samples / (double)hz:F2} CPU s"));
    Print("who spends the CPU (the innermost piece of work on the stack)", byWho, 20, samples);
    Print("the innermost three components and layers", byChain, 20, samples);
    return 0;
}

// A frame of managed code: JIT-compiled (named by the runtime's perf map) or precompiled in an assembly.
static bool Managed(string frame) =>
    frame.Contains("(/tmp/perf-", StringComparison.Ordinal) || frame.EndsWith(".dll)", StringComparison.Ordinal);

internal static partial class Program
{
    /// <summary>Layers under the pieces of work: a sample is theirs only when no piece of work is on its stack.</summary>
    private static readonly HashSet<string> Layers = ["Npgsql", "System.Text.Json", "DI", "ServiceDefaults", "the service's own code", "EF (query pipeline, change tracking)", "ASP.NET Core"];

    /// <summary>Components a stack may run through, the more specific first.</summary>
    private static readonly (string Pattern, string Name)[] Components =
    [
        ("SaveChanges", "EF SaveChanges"),
        ("FromSqlQueryingEnumerable", "EF FromSql query"),
        ("SingleQueryingEnumerable", "EF LINQ query"),
        ("ExecuteUpdate", "EF ExecuteUpdate/Delete"),
        ("ExecuteDelete", "EF ExecuteUpdate/Delete"),
        ("Library.LendingService.Data.RoundTrip", "RoundTrip (lending's batches)"),
        ("Library.LendingService.Loans.Idempotency", "Idempotency.RunAsync"),
        ("Library.EventBus.Outbox.AddEvent", "Outbox.AddEvent"),
        ("Library.EventBus.OutboxRelay", "outbox relay"),
        ("Library.EventBus.EventConsumer", "event consumer"),
        ("JwtBearer", "JWT validation"),
        ("Microsoft.AspNetCore.Authorization", "authorization"),
        ("Yarp.ReverseProxy", "YARP"),
        ("Microsoft.AspNetCore.OutputCaching", "output cache"),
        ("Microsoft.Extensions.Logging", "logging"),
        ("RabbitMQ.Client", "RabbitMQ client"),
        ("StackExchange.Redis", "Redis client"),
        ("Microsoft.AspNetCore.Http.RequestDelegateFactory", "minimal API binding"),
        ("System.Text.Json", "System.Text.Json"),
        ("Microsoft.AspNetCore.Server.Kestrel", "Kestrel"),
        ("Microsoft.Extensions.DependencyInjection", "DI"),
        ("Npgsql", "Npgsql"),
        ("Library.ServiceDefaults", "ServiceDefaults"),
        ("Library.", "the service's own code"),
        ("Microsoft.EntityFrameworkCore", "EF (query pipeline, change tracking)"),
        ("Microsoft.AspNetCore", "ASP.NET Core"),
    ];
}
