namespace Library.EventBus;

/// <summary>
/// Work a handler wants done only once its transaction has committed (e.g. invalidating a cache:
/// done before the commit, a concurrent reader could cache the old state under the new key).
/// Scoped: one per delivery; the consumer runs the actions after the commit, in order.
/// </summary>
public sealed class AfterCommit
{
    private readonly List<Func<Task>> _actions = [];

    public void Add(Func<Task> action) => _actions.Add(action);

    internal async Task RunAsync()
    {
        foreach (var action in _actions)
        {
            await action();
        }
        _actions.Clear();
    }

    internal void Clear() => _actions.Clear();
}
