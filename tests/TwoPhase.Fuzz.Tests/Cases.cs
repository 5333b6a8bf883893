using System.Text;
using System.Text.Json;
using CsCheck;
using TwoPhase.Fuzz.Tests.Harness;

namespace TwoPhase.Fuzz.Tests;

/// <summary>What a request carries to prove who it is.</summary>
public enum Credentials
{
    Right,
    None,
    WrongToken,
    WrongScheme,
    Truncated,
    Extended,
    NoScheme,
}

/// <summary>Data the cases point at: a committed order and what made it, a product and a courier that exist.</summary>
public sealed record World(string CommittedTx, string IdempotencyKey, string IdempotentBody, long LegacyOrderId, string CourierId);

/// <summary>One request that the system must refuse (or answer from what it recorded) without changing anything.</summary>
public sealed record FuzzCase(string Class, Svc Svc, string Method, string Path, string? Body, string? ContentType, Credentials Auth, string? IdempotencyKey, int[] Expected)
{
    public override string ToString() =>
        $"{Class}: {Method} {Svc} {Path} auth={Auth} ct={ContentType ?? "-"} key={IdempotencyKey ?? "-"} body={(Body is null ? "-" : Body.Length > 300 ? Body[..300] + $"...({Body.Length} chars)" : Body)} expect={string.Join('|', Expected)}";

    public HttpRequestMessage ToRequest(Services s)
    {
        var request = new HttpRequestMessage(new HttpMethod(Method), new Uri(s.Urls[Svc], Path.TrimStart('/')));
        if (Body is not null)
        {
            request.Content = new ByteArrayContent(Encoding.UTF8.GetBytes(Body));
            if (ContentType is not null)
            {
                request.Content.Headers.TryAddWithoutValidation("Content-Type", ContentType);
            }
        }

        var header = Auth switch
        {
            Credentials.Right => $"Bearer {s.Secret}",
            Credentials.WrongToken => $"Bearer {Convert.ToHexStringLower(Guid.NewGuid().ToByteArray())}{Convert.ToHexStringLower(Guid.NewGuid().ToByteArray())}",
            Credentials.WrongScheme => $"Basic {Convert.ToBase64String(Encoding.UTF8.GetBytes(s.Secret))}",
            Credentials.Truncated => $"Bearer {s.Secret[..^1]}",
            Credentials.Extended => $"Bearer {s.Secret}0",
            Credentials.NoScheme => s.Secret,
            _ => null,
        };
        if (header is not null)
        {
            request.Headers.TryAddWithoutValidation("Authorization", header);
        }

        if (IdempotencyKey is not null)
        {
            request.Headers.TryAddWithoutValidation("Idempotency-Key", IdempotencyKey);
        }

        return request;
    }
}

/// <summary>Generators of refused requests, one per class of refusal, for every endpoint of every service.</summary>
public static class Cases
{
    public const string Json = "application/json";
    public const int MaxBody = 64 * 1024;

    private static readonly Svc[] Participants = [Svc.Storage, Svc.Delivery];

    private static readonly Gen<Credentials> Unauthenticated = Gen.OneOf(
        Credentials.None, Credentials.WrongToken, Credentials.WrongScheme, Credentials.Truncated, Credentials.Extended, Credentials.NoScheme);

    private static readonly Gen<Credentials> AnyCredentials = Gen.OneOf(Unauthenticated, Gen.Const(Credentials.Right));

    private static readonly Gen<string> Fresh = Gen.Char["abcdefghijklmnopqrstuvwxyz0123456789"].Array[10, 20].Select(a => "fz-" + new string(a));

    /// <summary>Ids we refuse: too long, or with a character outside <c>[A-Za-z0-9._:-]</c>.</summary>
    private static readonly Gen<string> BadId = Gen.OneOf(
        Gen.Char["abcXYZ019._:-"].Array[65, 160].Select(a => new string(a)),
        Gen.Select(Fresh, Gen.Char[" /\\\"'<>{}|^`~!@#$%&*()+=,;?[]\u00e9\u00fc\u4e2d\t\u0001"], Gen.Int[0, 12], (id, c, at) => id.Insert(Math.Min(at, id.Length), c.ToString())));

    /// <summary>Bad ids that can travel in a header: ASCII only, the odd character inside, not at an end HTTP would trim.</summary>
    private static readonly Gen<string> BadHeaderId = Gen.OneOf(
        Gen.Char["abcXYZ019._:-"].Array[65, 160].Select(a => new string(a)),
        Gen.Select(Fresh, Gen.Char[" /\\\"'<>{}|^`~!@#$%&*()+=,;?[]"], Gen.Int[3, 9], (id, c, at) => id.Insert(at, c.ToString())));

    /// <summary>Text that is not JSON at all.</summary>
    private static readonly Gen<string> Malformed = Gen.OneOf(
        Gen.OneOf("{", "{\"items\":[", "{\"items\":[{\"sku\":\"widget\",\"quantity\":1}]", "{'items':[]}", "{\"items\":[{\"sku\":\"widget\" \"quantity\":1}]}",
            "{\"items\":[{\"sku\":\"widget\",\"quantity\":01}]}", "{\"a\":NaN}", "\u00ff\u00fe", "{\"quantity\":1e99999}", "]", "{\"items\":[{\"sku\":\"widget\",\"quantity\":1,}]}",
            new string('[', 200) + new string(']', 200), "{\"items\":[{\"sku\":\"wid\\uDEADget\",\"quantity\":1}]}"),
        Gen.Char["{}[]\":,0123456789abcnultrfse \\"].Array[1, 40].Select(a => new string(a)))
        .Where(s => !IsJson(s));

    private static readonly Gen<string> NotAnObject = Gen.OneOf("[]", "[{\"sku\":\"widget\",\"quantity\":1}]", "\"items\"", "42", "null", "true", "\"\"");

    private static readonly Gen<string> WrongContentType = Gen.OneOf(
        "text/plain", "application/xml", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/octet-stream", "image/png");

    private static readonly Gen<string> PlainContentTypeOrNone = Gen.OneOf(WrongContentType.Select(c => (string?)c), Gen.Const((string?)null)).Select(c => c ?? "");

    private static string Order(string sku = "widget", long quantity = 1) => $$"""{"items":[{"sku":"{{sku}}","quantity":{{quantity}}}]}""";

    /// <summary>A batch of the given messages (each a JSON object).</summary>
    private static string Batch(params string[] messages) => $$"""{"messages":[{{string.Join(",", messages)}}]}""";

    private static string PrepareMessage(string id) => $$"""{"type":"prepare","transactionId":"{{id}}","body":{{Prepare(id)}}}""";

    private static string Prepare(string orderId) => $$"""{"orderId":"{{orderId}}","items":[{"sku":"widget","quantity":1}]}""";

    private static string Legacy(string tx) => $$"""{"transactionId":"{{tx}}","orderId":7}""";

    /// <summary>A JSON body padded with spaces past the body limit.</summary>
    private static string Oversized(string body, int extra) => body.Insert(1, new string(' ', MaxBody + extra));

    private static FuzzCase Case(string cls, Svc svc, string method, string path, string? body, Credentials auth, params int[] expected) =>
        new(cls, svc, method, path, body, body is null ? null : Json, auth, null, expected);

    /// <summary>Every class of refusal with its generator; the fuzz draws from all, the facts take one of each.</summary>
    public static IReadOnlyList<(string Class, Gen<FuzzCase> Gen)> All(World w)
    {
        var classes = new List<(string, Gen<FuzzCase>)>();
        void Add(string cls, Gen<FuzzCase> gen) => classes.Add((cls, gen));
        var svcParticipant = Gen.OneOf(Participants);
        var idOrCommitted = Gen.OneOf(Fresh, Gen.Const(w.CommittedTx));

        // 401: every guarded endpoint, with a request that would otherwise be valid, and sometimes garbage instead of the body.
        var guarded = Gen.OneOf(
            Gen.Select(svcParticipant, Fresh, (svc, id) => ("POST", svc, $"/v1/transactions/{id}/prepare", (string?)Prepare(id))),
            Gen.Select(svcParticipant, idOrCommitted, Gen.OneOf("commit", "abort"), (svc, id, verb) => ("POST", svc, $"/v1/transactions/{id}/{verb}", (string?)"{}")),
            Gen.Select(svcParticipant, idOrCommitted, (svc, id) => ("GET", svc, $"/v1/transactions/{id}", (string?)null)),
            Gen.Select(svcParticipant, Fresh, (svc, id) => ("POST", svc, "/v1/transactions/batch", (string?)Batch(PrepareMessage(id)))),
            Gen.Select(svcParticipant, Gen.OneOf("/v1/transactions", "/v1/transactions?limit=5", "/v1/admin/prepared"), (svc, path) => ("GET", svc, path, (string?)null)),
            Gen.Select(svcParticipant, Gen.OneOf("prepare", "commit", "rollback"), idOrCommitted, (svc, verb, id) => ("POST", svc, $"/{verb}", (string?)Legacy(id))),
            Fresh.Select(sku => ("POST", Svc.Storage, "/v1/products", (string?)$$"""{"sku":"{{sku}}","name":"Fuzz","stock":5}""")),
            Gen.OneOf("widget", "gadget").Select(sku => ("POST", Svc.Storage, $"/v1/products/{sku}/restock", (string?)"""{"quantity":5}""")),
            Fresh.Select(id => ("POST", Svc.Delivery, "/v1/couriers", (string?)$$"""{"id":"{{id}}","name":"Fuzz"}""")),
            idOrCommitted.Select(id => ("POST", Svc.Delivery, $"/v1/deliveries/{id}/complete", (string?)null)),
            Gen.OneOf("/v1/admin/transactions", "/v1/admin/transactions?state=unfinished").Select(path => ("GET", Svc.Order, path, (string?)null)),
            idOrCommitted.Select(id => ("POST", Svc.Order, $"/v1/admin/transactions/{id}/retry", (string?)null)));
        Add("unauthenticated", Gen.Select(guarded, Unauthenticated, Gen.Int[0, 9], Malformed, (g, auth, mangle, junk) =>
        {
            var body = g.Item4 is null ? null : mangle switch { 0 => junk, 1 => Oversized(g.Item4, 10), _ => g.Item4 };
            var contentType = mangle == 2 ? "text/plain" : Json;
            // An oversized body is refused before anyone asks who sent it.
            return new FuzzCase("unauthenticated", g.Item2, g.Item1, g.Item3, body, body is null ? null : contentType, auth, null, mangle == 1 && body is not null ? [413] : [401]);
        }));

        // The order body (public: credentials change nothing).
        var orderPath = "/v1/orders";
        Add("order: malformed JSON", Gen.Select(Malformed, AnyCredentials, (b, a) => Case("order: malformed JSON", Svc.Order, "POST", orderPath, b, a, 400)));
        Add("order: not an object", Gen.Select(NotAnObject, AnyCredentials, (b, a) => Case("order: not an object", Svc.Order, "POST", orderPath, b, a, 400)));
        Add("order: wrong type", Gen.Select(
            Gen.OneOf(
                "{\"items\":\"widget\"}", "{\"items\":5}", "{\"items\":{}}", "{\"items\":[{\"sku\":\"widget\",\"quantity\":\"2\"}]}",
                "{\"items\":[{\"sku\":\"widget\",\"quantity\":1.5}]}", "{\"items\":[{\"sku\":\"widget\",\"quantity\":true}]}", "{\"items\":[{\"sku\":\"widget\",\"quantity\":[1]}]}",
                "{\"items\":[{\"sku\":5,\"quantity\":1}]}", "{\"items\":[{\"sku\":{},\"quantity\":1}]}", "{\"items\":[\"widget\"]}", "{\"items\":[[\"widget\",1]]}",
                "{\"items\":[{\"sku\":\"widget\",\"quantity\":1}],\"clientOrderId\":5}", "{\"items\":[{\"sku\":\"widget\",\"quantity\":99999999999999999999999}]}"),
            AnyCredentials,
            (b, a) => Case("order: wrong type", Svc.Order, "POST", orderPath, b, a, 400)));
        Add("order: missing field", Gen.Select(
            Gen.OneOf("{}", "{\"items\":[]}", "{\"items\":null}", "{\"items\":[{\"sku\":\"widget\"}]}", "{\"items\":[{\"quantity\":1}]}", "{\"items\":[null]}", "{\"items\":[{}]}", "{\"clientOrderId\":\"a\"}"),
            AnyCredentials,
            (b, a) => Case("order: missing field", Svc.Order, "POST", orderPath, b, a, 400)));
        Add("order: unknown field", Gen.Select(
            Gen.Char["abcdefghijklmnopqrstuvwxyz"].Array[1, 12].Select(a => new string(a)).Where(n => n is not ("items" or "clientorderid")),
            Gen.Bool,
            AnyCredentials,
            (name, inLine, a) => Case("order: unknown field", Svc.Order, "POST", orderPath,
                inLine && name is not ("sku" or "quantity") ? $$"""{"items":[{"sku":"widget","quantity":1,"{{name}}":1}]}""" : $$"""{"items":[{"sku":"widget","quantity":1}],"{{name}}":true}""",
                a, 400)));
        Add("order: quantity out of range", Gen.Select(
            Gen.OneOf(Gen.Long[long.MinValue, 0], Gen.Long[1001, long.MaxValue]),
            AnyCredentials,
            (q, a) => Case("order: quantity out of range", Svc.Order, "POST", orderPath, Order(quantity: q), a, 400)));
        Add("order: unknown SKU", Gen.Select(Fresh, AnyCredentials, (sku, a) => Case("order: unknown SKU", Svc.Order, "POST", orderPath, Order("nosuch-" + sku), a, 400)));
        Add("order: same SKU twice", Gen.Select(Gen.OneOf("widget", "gadget"), Gen.Long[1, 5], AnyCredentials, (sku, q, a) =>
            Case("order: same SKU twice", Svc.Order, "POST", orderPath, $$"""{"items":[{"sku":"{{sku}}","quantity":{{q}}},{"sku":"gizmo","quantity":1},{"sku":"{{sku}}","quantity":1}]}""", a, 400)));
        Add("order: more than 100 lines", Gen.Select(Gen.Int[101, 400], AnyCredentials, (n, a) =>
            Case("order: more than 100 lines", Svc.Order, "POST", orderPath, $$"""{"items":[{{string.Join(',', Enumerable.Range(0, n).Select(i => $$"""{"sku":"s{{i}}","quantity":1}"""))}}]}""", a, 400)));
        Add("order: bad id", Gen.Select(BadId, Gen.Bool, AnyCredentials, (bad, inSku, a) => Case("order: bad id", Svc.Order, "POST", orderPath,
            inSku ? $$"""{"items":[{"sku":{{JsonSerializer.Serialize(bad)}},"quantity":1}]}""" : $$"""{"items":[{"sku":"widget","quantity":1}],"clientOrderId":{{JsonSerializer.Serialize(bad)}}}""",
            a, 400)));
        Add("order: bad Idempotency-Key", Gen.Select(BadHeaderId, AnyCredentials, (key, a) =>
            Case("order: bad Idempotency-Key", Svc.Order, "POST", orderPath, Order(), a, 400) with { IdempotencyKey = key }));
        Add("order: Idempotency-Key reused with another body", Gen.Select(Gen.Long[2, 9], AnyCredentials, (q, a) =>
            Case("order: Idempotency-Key reused with another body", Svc.Order, "POST", orderPath, Order(quantity: q), a, 422) with { IdempotencyKey = w.IdempotencyKey }));
        Add("order: Idempotency-Key replayed", AnyCredentials.Select(a =>
            Case("order: Idempotency-Key replayed", Svc.Order, "POST", orderPath, w.IdempotentBody, a, 200) with { IdempotencyKey = w.IdempotencyKey }));
        Add("old order: bad order_id", Gen.Select(
            Gen.OneOf(Gen.OneOf("", "?order_id=", "?order_id=-1", "?order_id=abc", "?order_id=1.5", "?order_id=99999999999999999999", "?order_id=1&order_id=2", "?order_id=%20", "?orderid=1"),
                BadId.Select(b => "?order_id=" + Uri.EscapeDataString(b))),
            AnyCredentials,
            (q, a) => Case("old order: bad order_id", Svc.Order, "POST", "/order" + q, null, a, 400)));
        Add("old order: replayed", AnyCredentials.Select(a => Case("old order: replayed", Svc.Order, "POST", $"/order?order_id={w.LegacyOrderId}", null, a, 200)));

        // Bodies on every endpoint that reads one: too large, wrong content type.
        var bodyEndpoints = Gen.OneOf(
            Gen.Const((Svc.Order, orderPath, Order(), false)),
            Gen.Select(svcParticipant, Fresh, (svc, id) => (svc, $"/v1/transactions/{id}/prepare", Prepare(id), false)),
            Gen.Select(svcParticipant, Fresh, (svc, id) => (svc, "/v1/transactions/batch", Batch(PrepareMessage(id)), false)),
            Gen.Select(svcParticipant, Gen.OneOf("prepare", "commit", "rollback"), Fresh, (svc, verb, id) => (svc, $"/{verb}", Legacy(id), true)),
            Fresh.Select(sku => (Svc.Storage, "/v1/products", $$"""{"sku":"{{sku}}","name":"Fuzz","stock":5}""", false)),
            Gen.Const((Svc.Storage, "/v1/products/widget/restock", """{"quantity":5}""", false)),
            Fresh.Select(id => (Svc.Delivery, "/v1/couriers", $$"""{"id":"{{id}}","name":"Fuzz"}""", false)));
        Add("body too large", Gen.Select(bodyEndpoints, Gen.Int[1, 4096], (e, extra) => Case("body too large", e.Item1, "POST", e.Item2, Oversized(e.Item3, extra), Credentials.Right, 413)));
        Add("wrong content type", Gen.Select(bodyEndpoints, PlainContentTypeOrNone, (e, ct) =>
            // The old protocol takes a body without any Content-Type (old clients sent none); a wrong one is refused everywhere.
            new FuzzCase("wrong content type", e.Item1, "POST", e.Item2, e.Item3, ct.Length == 0 ? (e.Item4 ? "text/plain" : null) : ct, Credentials.Right, null, [415])));

        // Ids in routes and paging.
        var badRoute = Gen.Select(BadId.Select(Uri.EscapeDataString), svcParticipant, Gen.Int[0, 9], (id, p, which) => which switch
        {
            0 => ("GET", Svc.Order, $"/v1/orders/{id}"),
            1 => ("GET", Svc.Order, $"/v1/transactions/{id}"),
            2 => ("POST", Svc.Order, $"/v1/admin/transactions/{id}/retry"),
            3 => ("GET", Svc.Storage, $"/v1/products/{id}"),
            4 => ("POST", Svc.Storage, $"/v1/products/{id}/restock"),
            5 => ("POST", Svc.Delivery, $"/v1/deliveries/{id}/complete"),
            6 => ("GET", p, $"/v1/transactions/{id}"),
            7 => ("POST", p, $"/v1/transactions/{id}/commit"),
            8 => ("POST", p, $"/v1/transactions/{id}/abort"),
            _ => ("POST", p, $"/v1/transactions/{id}/prepare"),
        });
        Add("bad id in the path", badRoute.Select(r => Case("bad id in the path", r.Item2, r.Item1, r.Item3,
            r.Item3.EndsWith("/prepare", StringComparison.Ordinal) ? Prepare("o1") : r.Item3.EndsWith("/restock", StringComparison.Ordinal) ? """{"quantity":1}""" : null, Credentials.Right, 400)));
        Add("bad paging", Gen.Select(
            Gen.OneOf((Svc.Order, "/v1/orders"), (Svc.Storage, "/v1/transactions"), (Svc.Delivery, "/v1/transactions"), (Svc.Delivery, "/v1/deliveries")),
            Gen.OneOf(Gen.OneOf("limit=0", "limit=-3", "limit=1001", "limit=abc", "limit=1.5", "limit=99999999999"), BadId.Select(b => "after=" + Uri.EscapeDataString(b))),
            (e, q) => Case("bad paging", e.Item1, "GET", $"{e.Item2}?{q}", null, Credentials.Right, 400)));
        Add("admin: bad state", Gen.OneOf("state=all", "state=committed", "state=prepared", "limit=0", "limit=1001").Select(q =>
            Case("admin: bad state", Svc.Order, "GET", $"/v1/admin/transactions?{q}", null, Credentials.Right, 400)));
        Add("admin: retry unknown", Fresh.Select(id => Case("admin: retry unknown", Svc.Order, "POST", $"/v1/admin/transactions/{id}/retry", null, Credentials.Right, 404)));

        // The participants' protocol, authenticated, with what it must refuse or answer from its ledger.
        Add("prepare: bad body", Gen.Select(svcParticipant, Fresh, Gen.OneOf(Malformed, NotAnObject, Gen.OneOf(
            "{\"orderId\":{}}", "{\"orderId\":[1]}", "{\"orderId\":true}", "{\"orderId\":1.5}", "{\"orderId\":\"a b\"}")), (svc, id, body) =>
            Case("prepare: bad body", svc, "POST", $"/v1/transactions/{id}/prepare", body, Credentials.Right, 400)));
        Add("prepare: bad lines (storage)", Gen.Select(Fresh, Gen.OneOf(
            "{}", "{\"items\":[]}", "{\"items\":\"x\"}", "{\"items\":[{\"sku\":\"widget\",\"quantity\":0}]}", "{\"items\":[{\"sku\":\"widget\",\"quantity\":\"1\"}]}",
            "{\"items\":[{\"sku\":\"widget\",\"quantity\":1001}]}", "{\"items\":[{\"sku\":\"widget\",\"quantity\":1},{\"sku\":\"widget\",\"quantity\":1}]}",
            "{\"items\":[{\"sku\":\"a b\",\"quantity\":1}]}", "{\"items\":[7]}", "{\"items\":[{\"sku\":\"widget\",\"quantity\":1.5}]}"), (id, body) =>
            Case("prepare: bad lines (storage)", Svc.Storage, "POST", $"/v1/transactions/{id}/prepare", body, Credentials.Right, 400)));
        Add("commit: not prepared", Gen.Select(svcParticipant, Fresh, Gen.Bool, (svc, id, legacy) => legacy
            ? Case("commit: not prepared", svc, "POST", "/commit", Legacy(id), Credentials.Right, 409)
            : Case("commit: not prepared", svc, "POST", $"/v1/transactions/{id}/commit", "{}", Credentials.Right, 409)));
        Add("abort: after commit", Gen.Select(svcParticipant, Gen.Bool, (svc, legacy) => legacy
            ? Case("abort: after commit", svc, "POST", "/rollback", Legacy(w.CommittedTx), Credentials.Right, 409)
            : Case("abort: after commit", svc, "POST", $"/v1/transactions/{w.CommittedTx}/abort", "{}", Credentials.Right, 409)));
        Add("prepare: replayed", Gen.Select(svcParticipant, Gen.Bool, (svc, legacy) => legacy
            ? Case("prepare: replayed", svc, "POST", "/prepare", Legacy(w.CommittedTx), Credentials.Right, 200)
            : Case("prepare: replayed", svc, "POST", $"/v1/transactions/{w.CommittedTx}/prepare", Prepare(w.CommittedTx), Credentials.Right, 200)));
        // Batches: refused whole (400) for a bad envelope or a bad message (its type, id, trace context, members), so the
        // good messages beside it are not applied either. A PREPARE whose body is bad is that message's own NO instead.
        Add("batch: bad prepare body", Gen.Select(svcParticipant, Gen.OneOf(
            NotAnObject.Select(b => $$"""{"type":"prepare","transactionId":"fz-batch","body":{{b}}}"""),
            Gen.OneOf("""{"type":"prepare","transactionId":"fz-batch"}""", """{"type":"prepare","transactionId":"fz-batch","body":{"orderId":{}}}""")), (svc, bad) =>
            Case("batch: bad prepare body", svc, "POST", "/v1/transactions/batch", Batch(bad), Credentials.Right, 200)));
        var badMessage = Gen.OneOf(
            BadId.Select(b => $$"""{"type":"abort","transactionId":{{JsonSerializer.Serialize(b)}}}"""),
            Gen.OneOf(
                """{"type":"commit","transactionId":"fz-batch","body":{"x":1}}""", """{"type":"vote","transactionId":"fz-batch"}""", """{"transactionId":"fz-batch"}""",
                """{"type":"abort","transactionId":"fz-batch","traceparent":"00-zz"}""", """{"type":"abort","transactionId":"fz-batch","extra":1}""", "null", "7", "[]"));
        Add("batch: bad", Gen.Select(svcParticipant, Fresh, badMessage, Gen.Int[0, 5], Malformed, (svc, id, bad, which, junk) =>
            Case("batch: bad", svc, "POST", "/v1/transactions/batch", which switch
            {
                0 => Batch(PrepareMessage(id), bad),
                1 => Batch(bad, $$"""{"type":"abort","transactionId":"{{id}}"}"""),
                2 => """{"messages":[]}""",
                3 => "{\"messages\":[" + string.Join(",", Enumerable.Range(0, 129).Select(i => $$"""{"type":"abort","transactionId":"{{id}}-{{i}}"}""")) + "]}",
                4 => junk,
                _ => $$"""{"messages":[{{PrepareMessage(id)}}],"more":1}""",
            }, Credentials.Right, 400)));
        Add("batch: replayed", svcParticipant.Select(svc => Case("batch: replayed", svc, "POST", "/v1/transactions/batch",
            Batch(PrepareMessage(w.CommittedTx), $$"""{"type":"commit","transactionId":"{{w.CommittedTx}}"}"""), Credentials.Right, 200)));
        Add("old protocol: bad body", Gen.Select(svcParticipant, Gen.OneOf("prepare", "commit", "rollback"), Gen.OneOf(
            Malformed, NotAnObject, BadId.Select(b => $$"""{"transactionId":{{JsonSerializer.Serialize(b)}},"orderId":1}"""),
            Gen.OneOf("{}", "{\"orderId\":1}", "{\"transactionId\":null}", "{\"transactionId\":{}}", "{\"transactionId\":true}", "{\"transactionId\":\"t1\",\"orderId\":{}}",
                "{\"transactionId\":\"t1\",\"orderId\":\"a b\"}", "{\"transactionId\":\"t1\",\"orderId\":1.5}", "{\"transactionId\":\"t1\",\"orderId\":[1]}")), (svc, verb, body) =>
            Case("old protocol: bad body", svc, "POST", $"/{verb}", body, Credentials.Right, 400)));

        // Storage's and delivery's own endpoints.
        Add("product: invalid", Gen.Select(Fresh, Gen.Int[0, 10], BadId, (sku, which, bad) =>
            Case("product: invalid", Svc.Storage, "POST", "/v1/products", which switch
            {
                0 => $$"""{"sku":{{JsonSerializer.Serialize(bad)}},"name":"x","stock":1}""",
                1 => $$"""{"sku":"{{sku}}","stock":1}""",
                2 => $$"""{"sku":"{{sku}}","name":"   ","stock":1}""",
                3 => $$"""{"sku":"{{sku}}","name":"{{new string('n', 201)}}","stock":1}""",
                4 => $$"""{"sku":"{{sku}}","name":"x","stock":-1}""",
                5 => $$"""{"sku":"{{sku}}","name":"x","stock":1000000001}""",
                6 => $$"""{"sku":"{{sku}}","name":"x","stock":"5"}""",
                7 => $$"""{"sku":"{{sku}}","name":"x","stock":1,"price":3}""",
                8 => $$"""{"sku":"{{sku}}","name":"x"}""",
                9 => $$"""{"sku":"{{sku}}","name":5,"stock":1}""",
                _ => $$"""{"name":"x","stock":1}""",
            }, Credentials.Right, 400)));
        Add("product: exists", Gen.OneOf("widget", "gadget").Select(sku =>
            Case("product: exists", Svc.Storage, "POST", "/v1/products", $$"""{"sku":"{{sku}}","name":"Again","stock":3}""", Credentials.Right, 409)));
        Add("restock: invalid", Gen.Select(Gen.OneOf(
            "{}", "{\"quantity\":0}", "{\"quantity\":-4}", "{\"quantity\":1000000001}", "{\"quantity\":\"5\"}", "{\"quantity\":2.5}", "{\"quantity\":5,\"note\":1}", "{\"quantity\":null}"),
            Gen.OneOf("widget", "gadget"),
            (body, sku) => Case("restock: invalid", Svc.Storage, "POST", $"/v1/products/{sku}/restock", body, Credentials.Right, 400)));
        Add("restock: unknown SKU", Fresh.Select(sku => Case("restock: unknown SKU", Svc.Storage, "POST", $"/v1/products/nosuch-{sku}/restock", """{"quantity":5}""", Credentials.Right, 404)));
        Add("courier: invalid", Gen.Select(Fresh, Gen.Int[0, 6], BadId, (id, which, bad) =>
            Case("courier: invalid", Svc.Delivery, "POST", "/v1/couriers", which switch
            {
                0 => "{}",
                1 => $$"""{"id":"{{id}}","name":""}""",
                2 => $$"""{"id":"{{id}}","name":"{{new string('n', 201)}}"}""",
                3 => $$"""{"id":{{JsonSerializer.Serialize(bad)}},"name":"x"}""",
                4 => $$"""{"id":"{{id}}","name":"x","status":"busy"}""",
                5 => $$"""{"id":5,"name":"x"}""",
                _ => $$"""{"id":"{{id}}","name":["x"]}""",
            }, Credentials.Right, 400)));
        Add("courier: exists", Gen.Const(Case("courier: exists", Svc.Delivery, "POST", "/v1/couriers", $$"""{"id":"{{w.CourierId}}","name":"Again"}""", Credentials.Right, 409)));
        Add("delivery: complete unknown", Fresh.Select(id => Case("delivery: complete unknown", Svc.Delivery, "POST", $"/v1/deliveries/{id}/complete", null, Credentials.Right, 404)));

        // Routing.
        Add("unknown route", Gen.Select(Gen.OneOf(Svc.Order, Svc.Storage, Svc.Delivery), Fresh, AnyCredentials, Gen.OneOf("GET", "POST", "PUT", "DELETE"), (svc, seg, a, m) =>
            Case("unknown route", svc, m, $"/v2/{seg}", null, a, 404)));
        Add("wrong method", Gen.Select(
            Gen.OneOf((Svc.Order, "/v1/orders"), (Svc.Order, "/order"), (Svc.Storage, "/v1/products"), (Svc.Delivery, "/v1/couriers"), (Svc.Storage, "/prepare"), (Svc.Delivery, "/rollback")),
            Gen.OneOf("PUT", "DELETE", "PATCH"),
            AnyCredentials,
            (e, m, a) => Case("wrong method", e.Item1, m, e.Item2, null, a, 405)));
        return classes;
    }

    private static bool IsJson(string text)
    {
        try
        {
            using var _ = JsonDocument.Parse(text);
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }
}
