using System.Net;
using Grpc.Net.Client.Web;
using Library.Contracts.Catalog;
using Library.Contracts.Events;
using Library.Contracts.Users;
using Library.EventBus;
using Library.LendingService.Blocks;
using Library.LendingService.Calendar;
using Library.LendingService.Copies;
using Library.LendingService.Data;
using Library.LendingService.Desk;
using Library.LendingService.Fines;
using Library.LendingService.Holds;
using Library.LendingService.IntegrationEvents;
using Library.LendingService.Loans;
using Library.LendingService.Notices;
using Library.LendingService.Privacy;
using Library.LendingService.Reports;
using Library.LendingService.Replicas;
using Library.LendingService.Rules;
using Library.LendingService.Validation;
using Library.ServiceDefaults;

var builder = WebApplication.CreateBuilder(args);
// `dotnet Library.LendingService.dll dead-letters [list | peek SERVICE [N] | replay SERVICE [N]]`:
// the operator's command over every service's dead-letter queue (Library.EventBus/DeadLetters.cs)
// with this service's configuration, instead of the service.
if (await DeadLettersCommand.RunIfAskedAsync(args, builder.Configuration, LibraryTopology.Create(), Console.Out) is { } exitCode)
{
    Environment.ExitCode = exitCode;
    return;
}

builder.AddServiceDefaults();
builder.AddLibraryNpgsqlDbContext<LendingDbContext>("lendingdb");
// Migrations run first: the event bus's relay and consumer need their tables.
builder.Services.AddMigration<LendingDbContext>();
builder.AddLibraryRabbitMQ("messaging");
builder.AddEventBus<LendingDbContext>("lendingservice", LibraryTopology.Create())
    .AddHandler<BookCreated, BookCreatedHandler>()
    .AddHandler<BookUpdated, BookUpdatedHandler>()
    .AddHandler<BookStockChanged, BookStockChangedHandler>()
    .AddHandler<BookDeleted, BookDeletedHandler>()
    .AddHandler<UserRegistered, UserRegisteredHandler>()
    .AddHandler<UserUpdated, UserUpdatedHandler>()
    .AddHandler<UserDeactivated, UserDeactivatedHandler>()
    .AddHandler<PatronGroupCreated, PatronGroupCreatedHandler>()
    .AddHandler<PatronGroupUpdated, PatronGroupUpdatedHandler>()
    .AddHandler<PatronGroupDeleted, PatronGroupDeletedHandler>()
    // Notices, from lending's own events (Notices/NoticeHandlers.cs).
    .AddHandler<HoldReady, HoldReadyNoticeHandler>()
    .AddHandler<HoldExpired, HoldExpiredNoticeHandler>()
    .AddHandler<FineCharged, FineChargedNoticeHandler>()
    .AddHandler<LoanOverdue, LoanOverdueNoticeHandler>()
    .AddHandler<LoansAnonymised, LoansAnonymisedNoticeHandler>();
builder.AddLibraryAuthentication();

builder.Services.AddSingleton(TimeProvider.System);
builder.Services.AddOptions<LendingOptions>().Bind(builder.Configuration.GetSection(LendingOptions.SectionName));
builder.Services.AddOptions<CirculationGateOptions>().Bind(builder.Configuration.GetSection(LendingOptions.SectionName)).ValidateDataAnnotations().ValidateOnStart();
builder.Services.AddSingleton<CirculationGate>();
builder.Services.AddOptions<FineOptions>().Bind(builder.Configuration.GetSection(FineOptions.SectionName))
    .Validate(o => o.Currency is { Length: 3 } && o.Currency.All(char.IsAsciiLetterUpper) && o.BlockThreshold > 0,
        "Circulation:Currency must be an ISO 4217 code (three capital letters) and Circulation:BlockThreshold a positive amount in minor units.")
    .ValidateOnStart();
builder.Services.AddOptions<PrivacyOptions>().Bind(builder.Configuration.GetSection(PrivacyOptions.SectionName))
    .Validate(o => o.AnonymiseAfterDays >= 0, "Circulation:AnonymiseAfterDays must be 0 (never) or more.").ValidateOnStart();
builder.Services.AddScoped<LoanAnonymiser>();
builder.Services.AddScoped<CirculationSettings>();
builder.Services.AddSingleton<CirculationSettingsCache>();
builder.Services.AddScoped<ReaderAccounts>();
builder.Services.AddScoped<Shelf>();
builder.Services.AddScoped<Stock>();
builder.Services.AddScoped<WaitingList>();
builder.Services.AddScoped<CirculationDesk>();
builder.Services.AddScoped<Idempotency>();
builder.Services.AddScoped<ReplicaLookup>();
builder.Services.AddHostedService<CirculationClock>();

// Notices: recorded in lending's database (see Notice for why here), mailed by the sender over
// SMTP to ConnectionStrings:mail; without it they are recorded in the feed only.
builder.Services.AddOptions<DueSoonOptions>().Bind(builder.Configuration.GetSection(DueSoonOptions.SectionName));
builder.Services.AddOptions<NoticeOptions>().Bind(builder.Configuration.GetSection(NoticeOptions.SectionName));
builder.Services.AddSingleton(new NoticeSignal(MailServer.FromConfiguration(builder.Configuration)));
builder.Services.AddScoped<NoticeBook>();
builder.Services.AddHostedService<NoticeClock>();
builder.Services.AddHostedService<NoticeSender>();

// Look-ups on a replica miss: gRPC-Web to the catalog and the user service, found by service
// discovery, with a service token; the standard resilience handler retries transient failures.
builder.Services.AddSingleton<ServiceTokens>();
builder.Services.AddHttpClient(ServiceTokens.HttpClientName, c => c.BaseAddress = new Uri("http://userservice"));
builder.Services.AddGrpcClient<Catalog.CatalogClient>(o => o.Address = new Uri("http://bookservice")).ConfigureInternalGrpc();
builder.Services.AddGrpcClient<Users.UsersClient>(o => o.Address = new Uri("http://userservice")).ConfigureInternalGrpc();
builder.Services.AddOpenApi(o => o.AddSchemaTransformer(HandCheckedLimits.TransformAsync));
// The request records' and parameters' data annotations, checked before a handler runs (a 400
// naming the field): the same annotations give the OpenAPI document its limits.
builder.Services.AddValidation();
builder.Services.PostConfigure<ProblemDetailsOptions>(o =>
{
    var customize = o.CustomizeProblemDetails;
    o.CustomizeProblemDetails = context =>
    {
        customize?.Invoke(context);
        ValidationErrorKeys.ToClientNames(context);
    };
});

var app = builder.Build();

app.MapDefaultEndpoints();
// API requests take turns at the database (CirculationGate), after authorization: a refused one takes no turn.
app.UseConcurrencyGate(app.Services.GetRequiredService<CirculationGate>());
app.MapOpenApi();
app.MapLoans();
app.MapHolds();
app.MapCopies();
app.MapDesk();
app.MapCirculationRules();
app.MapCalendar();
app.MapFines();
app.MapBlocks();
app.MapNotices();
app.MapReports();

app.Run();

public partial class Program;

internal static class InternalGrpc
{
    /// <summary>
    /// gRPC-Web with a service token. The standard resilience handler of every client stays: it
    /// sits outside service discovery, so each retry picks a replica again. (A handler of their
    /// own, added here, sat inside it: every retry went to the same dead replica, and the fault
    /// suite's F4 saw a borrow 503.)
    /// </summary>
    public static IHttpClientBuilder ConfigureInternalGrpc(this IHttpClientBuilder client)
    {
        return client.ConfigurePrimaryHttpMessageHandler(() => new GrpcWebHandler(GrpcWebMode.GrpcWeb, new HttpClientHandler()))
            .ConfigureChannel(o =>
            {
                o.HttpVersion = HttpVersion.Version11;
                o.HttpVersionPolicy = HttpVersionPolicy.RequestVersionExact;
                // Internal traffic is plain HTTP inside the network; TLS ends at the ingress.
                o.UnsafeUseInsecureChannelCallCredentials = true;
            })
            .AddCallCredentials(async (_, metadata, services) =>
                metadata.Add("Authorization", $"Bearer {await services.GetRequiredService<ServiceTokens>().GetAsync(CancellationToken.None)}"));
    }
}
