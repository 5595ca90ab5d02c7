using Library.LendingService.Data;
using Library.TestSupport;

namespace Library.LendingService.Tests;

public sealed class StartupTests() : ServiceStartupTests<Program, LendingDbContext>("lendingdb");
