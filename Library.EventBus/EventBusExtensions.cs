using Library.ServiceDefaults;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;

namespace Library.EventBus;

public static class EventBusExtensions
{
    /// <summary>
    /// The event bus of one service whose data lives in <typeparamref name="TContext"/> (which
    /// maps <see cref="EventBusModelBuilderExtensions.AddEventBusTables"/>): the outbox relay, the
    /// consumer of the service's queue, and the signal that wakes the relay after a commit.
    /// Needs <c>AddLibraryRabbitMQ</c> first. Settings come from the <c>EventBus</c> section.
    /// </summary>
    public static EventBusBuilder AddEventBus<TContext>(this IHostApplicationBuilder builder, string serviceName, EventBusTopology topology)
        where TContext : DbContext
    {
        builder.Services.AddOptions<EventBusOptions>()
            .Bind(builder.Configuration.GetSection(EventBusOptions.SectionName))
            .Configure(o => o.ServiceName = serviceName)
            // A lease of zero or less would end as it is taken: every relay would send every row
            // again at once, and renewing it would never wait.
            .Validate(o => o.RelayLease > TimeSpan.Zero, "EventBus:RelayLease must be longer than zero.")
            .ValidateOnStart();
        builder.Services.TryAddSingleton(TimeProvider.System);
        builder.Services.AddSingleton(topology);
        builder.Services.AddSingleton<TopologyDeclarer>();
        builder.Services.AddSingleton<EventBusMetrics>();
        builder.Services.AddSingleton<OutboxSignal>();
        builder.Services.AddScoped<AfterCommit>();
        builder.Services.AddSingleton<IInterceptor, OutboxSignalInterceptor>();
        builder.Services.AddHostedService<OutboxRelay<TContext>>();
        builder.Services.AddHostedService<EventConsumer<TContext>>();
        return new EventBusBuilder(builder.Services, serviceName, topology);
    }
}

public sealed class EventBusBuilder(IServiceCollection services, string serviceName, EventBusTopology topology)
{
    /// <summary>
    /// <typeparamref name="THandler"/> applies <typeparamref name="TEvent"/> in this service. The
    /// event must be routed to this service's queue by the topology.
    /// </summary>
    public EventBusBuilder AddHandler<TEvent, THandler>()
        where TEvent : IntegrationEvent
        where THandler : class, IIntegrationEventHandler<TEvent>
    {
        services.AddSingleton(Register<TEvent, THandler>() with
        {
            Invoke = (provider, integrationEvent, ct) => provider.GetRequiredService<THandler>().HandleAsync((TEvent)integrationEvent, ct),
        });
        return this;
    }

    /// <summary>
    /// <typeparamref name="THandler"/> applies <typeparamref name="TEvent"/> in this service with
    /// statements the bus sends in one round trip with the inbox row
    /// (<see cref="IIntegrationEventStatements{TEvent}"/>).
    /// </summary>
    public EventBusBuilder AddStatementHandler<TEvent, THandler>()
        where TEvent : IntegrationEvent
        where THandler : class, IIntegrationEventStatements<TEvent>
    {
        services.AddSingleton(Register<TEvent, THandler>() with
        {
            Statements = (provider, integrationEvent) => provider.GetRequiredService<THandler>().Statements((TEvent)integrationEvent),
            Applied = (provider, integrationEvent, rows) => provider.GetRequiredService<THandler>().AppliedAsync((TEvent)integrationEvent, rows),
            LockOrder = (provider, integrationEvent) => ((IIntegrationEventStatements<TEvent>)provider.GetRequiredService<THandler>()).LockOrder((TEvent)integrationEvent),
        });
        return this;
    }

    /// <summary>
    /// The handler in the container (one per delivery's scope) and its registration without its
    /// work, once the topology is known to route the event to this service's queue.
    /// </summary>
    private HandlerRegistration Register<TEvent, THandler>()
        where TEvent : IntegrationEvent
        where THandler : class
    {
        var eventName = EventNames.Of<TEvent>();
        if (!topology.EventsFor(serviceName).Contains(eventName))
        {
            throw new InvalidOperationException(
                $"{serviceName} handles {eventName}, but the topology does not route {eventName} to the {serviceName} queue.");
        }
        services.AddScoped<THandler>();
        return new HandlerRegistration(eventName, typeof(TEvent), typeof(THandler).FullName ?? typeof(THandler).Name, Invoke: null);
    }
}
