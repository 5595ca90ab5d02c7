using Grpc.Core;
using Library.BookService.Data;
using Library.Contracts.Catalog;
using Microsoft.EntityFrameworkCore;

namespace Library.BookService.Grpc;

/// <summary>The lending service's look-up of titles it has no replica of yet (service tokens only).</summary>
public sealed class CatalogGrpcService(CatalogDbContext db) : Catalog.CatalogBase
{
    private const int MaxIds = 500;

    public override async Task<BookReply> GetBook(GetBookRequest request, ServerCallContext context)
    {
        if (!Guid.TryParse(request.Id, out var id))
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "id must be a GUID"));
        }
        var books = await LoadAsync([id], context.CancellationToken);
        return books.Count == 1 ? books[0] : throw new RpcException(new Status(StatusCode.NotFound, $"no book {id}"));
    }

    public override async Task<GetBooksReply> GetBooks(GetBooksRequest request, ServerCallContext context)
    {
        if (request.Ids.Count > MaxIds)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"at most {MaxIds} ids"));
        }
        var ids = new List<Guid>();
        foreach (var raw in request.Ids)
        {
            ids.Add(Guid.TryParse(raw, out var id) ? id : throw new RpcException(new Status(StatusCode.InvalidArgument, $"'{raw}' is not a GUID")));
        }
        var reply = new GetBooksReply();
        reply.Books.AddRange(await LoadAsync(ids, context.CancellationToken));
        return reply;
    }

    private Task<List<BookReply>> LoadAsync(List<Guid> ids, CancellationToken ct) =>
        db.Books.AsNoTracking().Where(b => ids.Contains(b.Id))
            .Select(b => new BookReply { Id = b.Id.ToString(), Isbn = b.Isbn, Title = b.Title, TotalCopies = b.TotalCopies, Version = b.Version })
            .ToListAsync(ct);
}
