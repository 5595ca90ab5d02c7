using System.Text.Json.Nodes;
using Microsoft.OpenApi;

namespace Library.BookService.OpenApi;

/// <summary>
/// What an endpoint's metadata cannot tell the OpenAPI document: a response header the handler
/// sets, an example body. Each is declared next to the endpoint it describes.
/// </summary>
public static class OperationDocs
{
    /// <summary>The book's version as an ETag on every success, for If-Match on the next change.</summary>
    public static RouteHandlerBuilder DocumentsETag(this RouteHandlerBuilder endpoint) =>
        endpoint.AddOpenApiOperationTransformer((operation, _, _) =>
        {
            foreach (var (code, response) in operation.Responses ?? [])
            {
                if (code.StartsWith('2') && response is OpenApiResponse concrete)
                {
                    concrete.Headers ??= new Dictionary<string, IOpenApiHeader>();
                    concrete.Headers["ETag"] = new OpenApiHeader
                    {
                        Description = "The book's version (a quoted number); send it back as If-Match to change the book only if nobody changed it meanwhile.",
                        Schema = new OpenApiSchema { Type = JsonSchemaType.String, Pattern = "^\"[0-9]+\"$", MaxLength = 22 },
                    };
                }
            }
            return Task.CompletedTask;
        });

    /// <summary>An example of the JSON request body.</summary>
    public static RouteHandlerBuilder WithRequestExample(this RouteHandlerBuilder endpoint, string json)
    {
        var example = JsonNode.Parse(json);
        return endpoint.AddOpenApiOperationTransformer((operation, _, _) =>
        {
            if (operation.RequestBody?.Content?.TryGetValue("application/json", out var content) == true && content is OpenApiMediaType media)
            {
                media.Example = example?.DeepClone();
            }
            return Task.CompletedTask;
        });
    }
}
