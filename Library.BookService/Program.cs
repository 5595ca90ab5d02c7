using Library.BookService.Authors;
using Library.BookService.Books;
using Library.BookService.Categories;
using Library.BookService.Data;
using Library.BookService.Grpc;
using Library.BookService.IntegrationEvents;
using Library.BookService.Recommendations;
using Library.BookService.Seeding;
using Library.Contracts.Events;
using Library.EventBus;
using Library.ServiceDefaults;
using Microsoft.EntityFrameworkCore;

var builder = WebApplication.CreateBuilder(args);

builder.AddServiceDefaults();
// A book comes with its authors and categories: split queries avoid the cartesian product.
// No automatic preparation: the searches' plans depend on their parameters (PostgresExtensions.WithPoolSettings).
// Sessions read a LIMIT without ORDER BY in the table's order (a broad search's candidates:
// CatalogQuery.CandidateSet): no synchronized scans (a scan joining another starts mid-table)
// and no parallel workers (their rows interleave), so the same statement reads the same rows.
builder.AddLibraryNpgsqlDbContext<CatalogDbContext>("bookdb", npgsql => npgsql.UseQuerySplittingBehavior(QuerySplittingBehavior.SplitQuery), autoPrepare: false,
    sessionSettings: CatalogQuery.SessionSettings);
// Migrations (then the sample catalog on a first run) go first: the event bus needs its tables.
builder.Services.AddMigration<CatalogDbContext>(CatalogImport.SeedAsync);
builder.AddLibraryRedisClient("cache");
builder.AddLibraryRabbitMQ("messaging");
builder.AddEventBus<CatalogDbContext>("bookservice", LibraryTopology.Create())
    .AddStatementHandler<BookAvailabilityChanged, AvailabilityChangedHandler>()
    .AddStatementHandler<LoanCreated, LoanCreatedHandler>()
    .AddStatementHandler<LoanReturned, LoanReturnedHandler>()
    .AddHandler<LoansAnonymised, LoansAnonymisedHandler>();
builder.AddLibraryAuthentication();
builder.Services.AddSingleton(TimeProvider.System);
builder.Services.AddSingleton<CatalogCache>();
builder.Services.AddSingleton<CatalogQueryGate>();
builder.Services.AddOptions<SearchOptions>().BindConfiguration("Catalog").ValidateDataAnnotations().ValidateOnStart();
// Every committed change invalidates the cached answers it touched, once, after the commit.
builder.Services.AddSingleton<Microsoft.EntityFrameworkCore.Diagnostics.IInterceptor, CatalogInvalidation>();
builder.Services.AddHttpContextAccessor();
builder.Services.AddHostedService<PopularityRefresher>();
// No catch-all for unknown gRPC services: its route, /{service}/{method} for any POST, also
// matches /api/books, /api/authors, /api/categories; a POST there with a body of another type than JSON then fell to it
// (routing sees it accept any type) and got a 404 instead of the 415. An unknown service is
// a 404 now, as any unknown path; an unknown method of a known service is still UNIMPLEMENTED.
builder.Services.AddGrpc(o => o.IgnoreUnknownServices = true);
// Request records and parameters declare their rules (data annotations); the endpoints check them
// before the handler runs, and the OpenAPI document shows the same limits.
builder.Services.AddValidation();
builder.Services.AddOpenApi();

var app = builder.Build();

app.MapDefaultEndpoints();
app.UseCatalogAnswerHeaders();
app.MapOpenApi();
app.MapBooks();
app.MapAuthors();
app.MapCategories();
app.MapRecommendations();
// gRPC(-Web) for the lending service's look-ups: service tokens only.
app.UseGrpcWeb(new GrpcWebOptions { DefaultEnabled = true });
app.MapGrpcService<CatalogGrpcService>().RequireAuthorization(Policies.Service);

app.Run();

public partial class Program;
