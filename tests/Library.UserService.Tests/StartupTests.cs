using Library.UserService.Data;
using Library.TestSupport;

namespace Library.UserService.Tests;

public sealed class StartupTests() : ServiceStartupTests<Program, UserDbContext>("userdb");
