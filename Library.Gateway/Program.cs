using Library.Gateway.Routing;
using Library.ServiceDefaults;
using Yarp.ReverseProxy.Configuration;

var builder = WebApplication.CreateBuilder(args);

builder.AddServiceDefaults();
builder.AddLibraryAuthentication();
builder.Services.AddReverseProxy();
builder.Services.AddSingleton<IProxyConfigProvider, ServiceDiscoveryProxyConfigProvider>();

var app = builder.Build();

app.MapDefaultEndpoints();
app.UseTokenCheckAtTheDoor();
app.MapReverseProxy();

app.Run();

public partial class Program;
