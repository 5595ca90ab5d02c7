using Microsoft.EntityFrameworkCore;

namespace Library.EventBus;

/// <summary>An event waiting in the publisher's database to be sent (one row per event).</summary>
public sealed class OutboxMessage
{
    /// <summary>The event's ID.</summary>
    public Guid Id { get; set; }

    /// <summary>Commit order; the relay sends in this order.</summary>
    public long Sequence { get; set; }

    public required string EventName { get; set; }
    public required string Payload { get; set; }

    /// <summary>W3C trace context of the use case that raised the event.</summary>
    public string? TraceParent { get; set; }
    public string? TraceState { get; set; }

    public DateTimeOffset OccurredAt { get; set; }
    public DateTimeOffset? SentAt { get; set; }
    public int Attempts { get; set; }
    public DateTimeOffset? NextAttemptAt { get; set; }
    public string? LastError { get; set; }
}

/// <summary>An event a consumer has applied: recorded in the same transaction as its effect.</summary>
public sealed class InboxMessage
{
    public Guid EventId { get; set; }

    /// <summary>Which handler applied it (one service may handle an event in several ways).</summary>
    public required string Handler { get; set; }
    public DateTimeOffset HandledAt { get; set; }
}

public static class EventBusModelBuilderExtensions
{
    /// <summary>Maps the outbox and inbox tables into a service's DbContext (call in OnModelCreating).</summary>
    public static ModelBuilder AddEventBusTables(this ModelBuilder modelBuilder)
    {
        modelBuilder.Entity<OutboxMessage>(outbox =>
        {
            outbox.ToTable("outbox_messages");
            outbox.HasKey(m => m.Id);
            outbox.Property(m => m.Sequence).UseIdentityAlwaysColumn();
            outbox.HasIndex(m => m.Sequence).HasFilter("sent_at IS NULL").HasDatabaseName("ix_outbox_messages_pending");
            outbox.HasIndex(m => m.SentAt);
            outbox.Property(m => m.EventName).HasMaxLength(100);
            outbox.Property(m => m.Payload).HasColumnType("jsonb");
            outbox.Property(m => m.TraceParent).HasMaxLength(55);
            outbox.Property(m => m.TraceState).HasMaxLength(512);
            outbox.Property(m => m.LastError).HasMaxLength(1000);
        });

        modelBuilder.Entity<InboxMessage>(inbox =>
        {
            inbox.ToTable("inbox_messages");
            inbox.HasKey(m => new { m.EventId, m.Handler });
            inbox.Property(m => m.Handler).HasMaxLength(200);
            inbox.HasIndex(m => m.HandledAt);
        });
        return modelBuilder;
    }
}
