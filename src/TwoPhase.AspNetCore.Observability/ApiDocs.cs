using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace TwoPhase.AspNetCore;

/// <summary>
/// The OpenAPI document of a service (<c>/openapi/v1.json</c>), generated from its endpoints, and an interactive
/// page for it (<c>/swagger</c>). The page's scripts are embedded in the Swashbuckle package and served by the
/// service itself: it works on a machine with no outside network.
/// </summary>
public static class ApiDocsExtensions
{
    /// <summary>Where the OpenAPI document is served.</summary>
    public const string DocumentPath = "/openapi/v1.json";
    /// <summary>The Swagger UI page's path below the root (<c>/swagger</c>).</summary>
    public const string PagePrefix = "swagger";

    /// <summary>Registers the OpenAPI document with <paramref name="title"/> and <paramref name="description"/>, which gets a note on the secret and on problem details appended.</summary>
    public static WebApplicationBuilder AddTwoPhaseApiDocs(this WebApplicationBuilder builder, string title, string description)
    {
        builder.Services.AddOpenApi(o => o.AddDocumentTransformer((document, _, _) =>
        {
            document.Info.Title = title;
            document.Info.Description = description + " Protocol and admin endpoints need `Authorization: Bearer <secret>`: TwoPhase:Secret, or the one the services generated in ~/.config/twophase/secret. Errors are RFC 7807 problem details.";
            document.Info.Version = "v1";
            return Task.CompletedTask;
        }));
        return builder;
    }

    /// <summary>Maps the document at <see cref="DocumentPath"/> and the Swagger UI page at <see cref="PagePrefix"/>.</summary>
    public static WebApplication MapTwoPhaseApiDocs(this WebApplication app)
    {
        app.MapOpenApi(DocumentPath);
        app.UseSwaggerUI(o =>
        {
            o.RoutePrefix = PagePrefix;
            o.SwaggerEndpoint(DocumentPath, "v1");
            o.DocumentTitle = "TwoPhase API";
        });
        return app;
    }
}
