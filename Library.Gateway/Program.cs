using Library.Gateway.OpenApi;
using Library.Gateway.Routing;
using Library.ServiceDefaults;
using Scalar.AspNetCore;

// The page is served from wwwroot wherever the gateway runs: the project folder (dotnet run, the
// AppHost), a publish folder, or its build output (a copy is made there at build time), so a
// gateway started as `dotnet bin/.../Library.Gateway.dll` from anywhere still serves `/`.
var builder = WebApplication.CreateBuilder(new WebApplicationOptions
{
    Args = args,
    WebRootPath = Directory.Exists(Path.Combine(Directory.GetCurrentDirectory(), "wwwroot"))
        ? null
        : Path.Combine(AppContext.BaseDirectory, "wwwroot"),
});

builder.AddServiceDefaults();
// Several gateway processes on one port (Gateway:ReusePort; the process harness).
builder.AddSharedPort();
builder.AddLibraryAuthentication();
builder.Services.AddLibraryRateLimits(builder.Configuration);
// Bodies over the limit are refused while they are read: 413 problem details (a catalog
// import has its own, larger limit: RateLimiting:MaxImportBytes).
var limits = builder.Configuration.GetSection(LimitOptions.SectionName).Get<LimitOptions>() ?? new LimitOptions();
var maxBody = limits.MaxBodyBytes;
builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = maxBody);
builder.AddCatalogOutputCache();
builder.AddLibraryProxy();
builder.Services.AddPublicApiDocument();

var app = builder.Build();

// Anonymous catalog reads answered from memory come first: a hit skips routing, authentication
// and everything below (it writes the headers they would have; CatalogOutputCache).
app.UseCatalogOutputCache();
app.UseRouting();
app.UseAuthentication();
app.UseAuthorization();
app.UseConnectionCloseWhileStopping();
app.UsePageHeaders();
app.UseBodyLimit(maxBody, limits.MaxImportBytes);
app.MapDefaultEndpoints();
app.UseTokenCheckAtTheDoor();
app.UseLoginEmailForLimits();
app.UseRateLimitHeaders();
app.UseRateLimiter();
app.UseDefaultFiles();
app.UseStaticFiles();
// The whole public API in one document (shown first), and every service's own, fetched through
// the gateway (/openapi/{service}.json).
app.MapPublicApiDocument();
app.MapScalarApiReference("/docs", o => o
    .WithTitle("Library API")
    .AddDocument("library", "Library API (all)", PublicApiDocument.Path, isDefault: true)
    .AddDocument("userservice", "Users and auth", "/openapi/userservice.json")
    .AddDocument("bookservice", "Catalog", "/openapi/bookservice.json")
    .AddDocument("lendingservice", "Lending", "/openapi/lendingservice.json"));
app.MapReverseProxy(proxy =>
{
    proxy.UseRetryOnAnotherReplica(maxBody);
    proxy.UseSessionAffinity();
    proxy.UseLoadBalancing();
    proxy.UsePassiveHealthChecks();
});

app.Run();

public partial class Program;
