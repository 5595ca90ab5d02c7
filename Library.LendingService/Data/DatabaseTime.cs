namespace Library.LendingService.Data;

public static class DatabaseTime
{
    /// <summary>Now, to the microsecond PostgreSQL keeps, so an answer equals what is read back later.</summary>
    public static DateTimeOffset DatabaseNow(this TimeProvider time)
    {
        var now = time.GetUtcNow();
        return now.AddTicks(-(now.Ticks % 10));
    }
}
