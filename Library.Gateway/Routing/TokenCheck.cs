using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;

namespace Library.Gateway.Routing;

/// <summary>
/// Auth at the door: a request that carries a bearer token is forwarded only if the token is
/// valid (signature by the user service's published keys, issuer, audience, lifetime, ES256),
/// and then with the same token; a request without one passes through and the service decides
/// whether the endpoint is anonymous. A forged token never reaches a service.
/// </summary>
public static class TokenCheck
{
    public static IApplicationBuilder UseTokenCheckAtTheDoor(this IApplicationBuilder app) => app.Use(async (context, next) =>
    {
        if (context.Request.Headers.Authorization.Count > 0)
        {
            var result = await context.AuthenticateAsync(JwtBearerDefaults.AuthenticationScheme);
            if (!result.Succeeded)
            {
                var logger = context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("Library.Gateway.Auth");
                logger.LogInformation("Refused a request to {Path}: {Reason}", context.Request.Path, result.Failure?.Message ?? "not a bearer token");
                await context.ChallengeAsync(JwtBearerDefaults.AuthenticationScheme);
                return;
            }
        }
        await next(context);
    });
}
