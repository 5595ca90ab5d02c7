using Library.BookService.Data;
using Library.TestSupport;

namespace Library.BookService.Tests;

public sealed class StartupTests() : ServiceStartupTests<Program, CatalogDbContext>("bookdb");
