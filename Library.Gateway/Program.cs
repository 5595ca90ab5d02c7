using Library.Gateway.Routing;
using Library.ServiceDefaults;
using Scalar.AspNetCore;
using Yarp.ReverseProxy.Configuration;

var builder = WebApplication.CreateBuilder(args);

builder.AddServiceDefaults();
builder.AddLibraryAuthentication();
builder.Services.AddLibraryRateLimits(builder.Configuration);
// Bodies over the limit are refused while they are read: 413 problem details.
var maxBody = builder.Configuration.GetSection(LimitOptions.SectionName).Get<LimitOptions>()?.MaxBodyBytes ?? new LimitOptions().MaxBodyBytes;
builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = maxBody);
builder.AddCatalogOutputCache();
builder.Services.AddReverseProxy();
builder.Services.AddSingleton<IProxyConfigProvider, ServiceDiscoveryProxyConfigProvider>();

var app = builder.Build();

app.UsePageHeaders();
app.UseBodyLimit(maxBody);
app.MapDefaultEndpoints();
app.UseTokenCheckAtTheDoor();
app.UseLoginEmailForLimits();
app.UseRateLimiter();
app.UseOutputCache();
app.UseDefaultFiles();
app.UseStaticFiles();
// Every service's OpenAPI document, fetched through the gateway (/openapi/{service}.json).
app.MapScalarApiReference("/docs", o => o
    .WithTitle("Library API")
    .AddDocument("userservice", "Users and auth", "/openapi/userservice.json")
    .AddDocument("bookservice", "Catalog", "/openapi/bookservice.json", isDefault: true)
    .AddDocument("lendingservice", "Lending", "/openapi/lendingservice.json"));
app.MapReverseProxy(proxy =>
{
    proxy.UseRetryOnAnotherReplica();
    proxy.UseSessionAffinity();
    proxy.UseLoadBalancing();
    proxy.UsePassiveHealthChecks();
});

app.Run();

public partial class Program;
