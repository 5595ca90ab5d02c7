using Grpc.Core;
using Library.Contracts.Users;
using Library.UserService.Data;
using Microsoft.EntityFrameworkCore;

namespace Library.UserService.Grpc;

/// <summary>The lending service's look-up of a reader it has no replica of yet (service tokens only).</summary>
public sealed class UsersGrpcService(UserDbContext db) : Library.Contracts.Users.Users.UsersBase
{
    public override async Task<UserReply> GetUser(GetUserRequest request, ServerCallContext context)
    {
        if (!Guid.TryParse(request.Id, out var id))
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "id must be a GUID"));
        }
        var user = await db.Users.AsNoTracking().SingleOrDefaultAsync(u => u.Id == id, context.CancellationToken)
            ?? throw new RpcException(new Status(StatusCode.NotFound, $"no user {id}"));
        return new UserReply
        {
            Id = user.Id.ToString(),
            Email = user.Email,
            FirstName = user.FirstName,
            LastName = user.LastName,
            Role = user.Role,
            Active = user.Active,
            Version = user.Version,
            PatronGroupId = user.PatronGroupId.ToString(),
            // Set always, so lending stores a reader fetched right after an opt-out as keeping none.
            KeepLoanHistory = user.KeepLoanHistory,
        };
    }
}
