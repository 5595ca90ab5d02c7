#:project ../../tests/Library.TestSupport/Library.TestSupport.csproj
#:property TreatWarningsAsErrors=false
// Lints OpenAPI documents (files or URLs) with the rules the document tests enforce
// (tests/Library.TestSupport/Contract/OpenApiLint.cs) and prints their counts: operations,
// documented responses, inputs, inputs without limits, findings. For before/after figures:
//   dotnet run eng/openapi-lint/openapi-lint.cs -- doc1.json http://127.0.0.1:8080/openapi/library.json [--findings]
using Library.TestSupport.Contract;

var showFindings = args.Contains("--findings");
using var http = new HttpClient();
foreach (var source in args.Where(a => !a.StartsWith("--", StringComparison.Ordinal)))
{
    var json = source.StartsWith("http", StringComparison.OrdinalIgnoreCase) ? await http.GetStringAsync(source) : await File.ReadAllTextAsync(source);
    var report = OpenApiLint.Check(Path.GetFileName(source), json);
    Console.WriteLine(showFindings ? report.ToString() : report.Counts);
}
