using Xunit;

namespace Library.TestSupport;

/// <summary>Waiting for something that happens by events: polled with a deadline, never a fixed sleep.</summary>
public static class Eventually
{
    public static async Task WaitUntilAsync(Func<Task<bool>> condition, string what, int seconds = 30)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"Not within {seconds} s: {what}");
            await Task.Delay(50, TestContext.Current.CancellationToken);
        }
    }
}
