namespace Library.TestSupport;

/// <summary>Makes valid ISBN-13s that no real book has (979-8 range, counting up).</summary>
public static class TestIsbn
{
    private static long _next = Random.Shared.NextInt64(10_000_000, 80_000_000);

    public static string Next()
    {
        var body = "9798" + Interlocked.Increment(ref _next).ToString("D8", System.Globalization.CultureInfo.InvariantCulture);
        var sum = 0;
        for (var i = 0; i < 12; i++)
        {
            sum += (body[i] - '0') * (i % 2 == 0 ? 1 : 3);
        }
        return body + ((10 - sum % 10) % 10);
    }
}
