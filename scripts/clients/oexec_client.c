/*
 * oexec_client.c - a non-Python oexec client: places one order, gets it back, then
 * amends its price in place (modify_order: same order id, new price).
 *
 * Shows the wire protocol (docs/wire.md) from C with nothing but libzmq: a REQ socket,
 * one msgpack map per request, written and read by the ~150 lines of msgpack below.
 *
 *   cc -O2 -o oexec_client scripts/clients/oexec_client.c -lzmq
 *   ./oexec_client tcp://127.0.0.1:5555 [REQUEST_ID]
 *
 * Prints each reply as one JSON line; exits 0 when all three replies are ok.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define WIRE_VERSION 1

/* ---- msgpack writer: just what a request needs (map, str, int) ------------------- */
typedef struct { unsigned char buf[4096]; size_t len; } writer;

static void put(writer *w, const void *p, size_t n) {
    if (w->len + n > sizeof w->buf) { fprintf(stderr, "request too large\n"); exit(2); }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
}
static void put_byte(writer *w, unsigned char b) { put(w, &b, 1); }
static void put_be(writer *w, uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; i--) put_byte(w, (unsigned char)(v >> (8 * i)));
}
static void w_map(writer *w, unsigned n) { put_byte(w, (unsigned char)(0x80 | n)); } /* n < 16 */
static void w_str(writer *w, const char *s) {
    size_t n = strlen(s);
    if (n < 32) put_byte(w, (unsigned char)(0xa0 | n));
    else if (n < 256) { put_byte(w, 0xd9); put_be(w, n, 1); }
    else { put_byte(w, 0xda); put_be(w, n, 2); }
    put(w, s, n);
}
static void w_int(writer *w, uint64_t v) { /* non-negative only */
    if (v < 128) put_byte(w, (unsigned char)v);
    else { put_byte(w, 0xcf); put_be(w, v, 8); }
}
static void w_kv(writer *w, const char *k, const char *v) { w_str(w, k); w_str(w, v); }

/* ---- msgpack reader: skip, find a key, print as JSON ----------------------------- */
typedef struct { const unsigned char *p, *end; } reader;

static uint64_t be(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = (v << 8) | p[i];
    return v;
}

/* Header of the next object: its kind, and its length (str/bin bytes or map/array items). */
enum kind { K_NIL, K_BOOL, K_INT, K_UINT, K_FLOAT, K_STR, K_BIN, K_ARRAY, K_MAP, K_EXT, K_BAD };
typedef struct { enum kind kind; uint64_t len; int64_t i; uint64_t u; double f; } head;

static int need(reader *r, size_t n) { return (size_t)(r->end - r->p) >= n; }

static head next(reader *r) {
    head h = {K_BAD, 0, 0, 0, 0};
    if (!need(r, 1)) return h;
    unsigned char t = *r->p++;
    size_t n = 0;
    if (t <= 0x7f) { h.kind = K_UINT; h.u = t; return h; }
    if (t >= 0xe0) { h.kind = K_INT; h.i = (int8_t)t; return h; }
    if ((t & 0xf0) == 0x80) { h.kind = K_MAP; h.len = t & 0x0f; return h; }
    if ((t & 0xf0) == 0x90) { h.kind = K_ARRAY; h.len = t & 0x0f; return h; }
    if ((t & 0xe0) == 0xa0) { h.kind = K_STR; h.len = t & 0x1f; return h; }
    switch (t) {
    case 0xc0: h.kind = K_NIL; return h;
    case 0xc2: case 0xc3: h.kind = K_BOOL; h.u = t == 0xc3; return h;
    case 0xcc: case 0xcd: case 0xce: case 0xcf:
        n = (size_t)1 << (t - 0xcc); if (!need(r, n)) return h;
        h.kind = K_UINT; h.u = be(r->p, (int)n); r->p += n; return h;
    case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
        n = (size_t)1 << (t - 0xd0); if (!need(r, n)) return h;
        uint64_t raw = be(r->p, (int)n); r->p += n; h.kind = K_INT;
        h.i = n == 1 ? (int8_t)raw : n == 2 ? (int16_t)raw : n == 4 ? (int32_t)raw : (int64_t)raw;
        return h;
    }
    case 0xca: case 0xcb: {
        n = t == 0xca ? 4 : 8; if (!need(r, n)) return h;
        uint64_t raw = be(r->p, (int)n); r->p += n; h.kind = K_FLOAT;
        if (n == 4) { uint32_t u32 = (uint32_t)raw; float f; memcpy(&f, &u32, 4); h.f = f; }
        else { memcpy(&h.f, &raw, 8); }
        return h;
    }
    case 0xd9: case 0xda: case 0xdb: case 0xc4: case 0xc5: case 0xc6:
        n = (t == 0xd9 || t == 0xc4) ? 1 : (t == 0xda || t == 0xc5) ? 2 : 4;
        if (!need(r, n)) return h;
        h.kind = t >= 0xd9 ? K_STR : K_BIN; h.len = be(r->p, (int)n); r->p += n; return h;
    case 0xdc: case 0xdd: case 0xde: case 0xdf:
        n = (t == 0xdc || t == 0xde) ? 2 : 4; if (!need(r, n)) return h;
        h.kind = t <= 0xdd ? K_ARRAY : K_MAP; h.len = be(r->p, (int)n); r->p += n; return h;
    default: return h; /* ext types: not used by the protocol */
    }
}

static int skip(reader *r) {
    head h = next(r);
    if (h.kind == K_BAD || h.kind == K_EXT) return -1;
    if (h.kind == K_STR || h.kind == K_BIN) {
        if (!need(r, h.len)) return -1;
        r->p += h.len; return 0;
    }
    uint64_t items = h.kind == K_ARRAY ? h.len : h.kind == K_MAP ? 2 * h.len : 0;
    for (uint64_t i = 0; i < items; i++) if (skip(r) < 0) return -1;
    return 0;
}

/* Position r at the value of key in the map at r; 0 on success. */
static int find(reader *r, const char *key) {
    head h = next(r);
    if (h.kind != K_MAP) return -1;
    size_t klen = strlen(key);
    for (uint64_t i = 0; i < h.len; i++) {
        reader save = *r;
        head k = next(r);
        if (k.kind == K_STR && need(r, k.len) && k.len == klen && !memcmp(r->p, key, klen)) {
            r->p += k.len; return 0;
        }
        *r = save;
        if (skip(r) < 0 || skip(r) < 0) return -1;
    }
    return -1;
}

static int print_json(reader *r) {
    head h = next(r);
    switch (h.kind) {
    case K_NIL: printf("null"); return 0;
    case K_BOOL: printf(h.u ? "true" : "false"); return 0;
    case K_UINT: printf("%llu", (unsigned long long)h.u); return 0;
    case K_INT: printf("%lld", (long long)h.i); return 0;
    case K_FLOAT: printf("%.17g", h.f); return 0;
    case K_STR:
        if (!need(r, h.len)) return -1;
        putchar('"');
        for (uint64_t i = 0; i < h.len; i++) {
            unsigned char c = r->p[i];
            if (c == '"' || c == '\\') printf("\\%c", c);
            else if (c < 0x20) printf("\\u%04x", c);
            else putchar(c);
        }
        putchar('"'); r->p += h.len; return 0;
    case K_BIN: if (!need(r, h.len)) return -1; printf("\"<%llu bytes>\"", (unsigned long long)h.len);
        r->p += h.len; return 0;
    case K_ARRAY:
        putchar('[');
        for (uint64_t i = 0; i < h.len; i++) { if (i) putchar(','); if (print_json(r) < 0) return -1; }
        putchar(']'); return 0;
    case K_MAP:
        putchar('{');
        for (uint64_t i = 0; i < h.len; i++) {
            if (i) putchar(',');
            if (print_json(r) < 0) return -1;
            putchar(':');
            if (print_json(r) < 0) return -1;
        }
        putchar('}'); return 0;
    default: return -1;
    }
}

/* ---- one request/reply over REQ ---------------------------------------------------- */
static int call(void *sock, writer *w, unsigned char *reply, size_t cap, size_t *len) {
    if (zmq_send(sock, w->buf, w->len, 0) < 0) { perror("zmq_send"); return -1; }
    int n = zmq_recv(sock, reply, cap, 0);
    if (n < 0) { fprintf(stderr, "no reply: %s\n", zmq_strerror(zmq_errno())); return -1; }
    if ((size_t)n > cap) { fprintf(stderr, "reply too large\n"); return -1; }
    *len = (size_t)n;
    reader r = {reply, reply + n};
    if (print_json(&r) < 0) { fprintf(stderr, "unreadable reply\n"); return -1; }
    putchar('\n');
    reader ok = {reply, reply + n};
    if (find(&ok, "ok") < 0) return -1;
    head h = next(&ok);
    return h.kind == K_BOOL && h.u ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: %s ENDPOINT [REQUEST_ID]\n", argv[0]); return 2; }
    const char *request_id = argc > 2 ? argv[2] : "c-client-1";
    void *ctx = zmq_ctx_new();
    void *sock = zmq_socket(ctx, ZMQ_REQ);
    int timeout_ms = 5000, linger = 0;
    zmq_setsockopt(sock, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms);
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_connect(sock, argv[1]) < 0) { perror("zmq_connect"); return 2; }

    static unsigned char reply[1 << 16];
    size_t len = 0;
    writer w = {{0}, 0};
    w_map(&w, 10);
    w_str(&w, "v"); w_int(&w, WIRE_VERSION);
    w_str(&w, "id"); w_int(&w, 1);
    w_kv(&w, "op", "place_order");
    w_kv(&w, "request_id", request_id);
    w_kv(&w, "symbol", "BTCUSDT");
    w_kv(&w, "side", "BUY");
    w_kv(&w, "type", "LIMIT");
    w_kv(&w, "quantity", "0.010"); /* decimals travel as strings */
    w_kv(&w, "price", "50000");
    w_kv(&w, "time_in_force", "GTC");
    int rc = call(sock, &w, reply, sizeof reply, &len);
    if (rc != 0) goto done;

    /* result.order.id of the placed order */
    reader r = {reply, reply + len};
    char order_id[80];
    if (find(&r, "result") < 0 || find(&r, "order") < 0 || find(&r, "id") < 0) { rc = 1; goto done; }
    head h = next(&r);
    if (h.kind != K_STR || h.len >= sizeof order_id || !need(&r, h.len)) { rc = 1; goto done; }
    memcpy(order_id, r.p, h.len);
    order_id[h.len] = 0;

    writer g = {{0}, 0};
    w_map(&g, 4);
    w_str(&g, "v"); w_int(&g, WIRE_VERSION);
    w_str(&g, "id"); w_int(&g, 2);
    w_kv(&g, "op", "get_order");
    w_kv(&g, "order_id", order_id);
    rc = call(sock, &g, reply, sizeof reply, &len);
    if (rc != 0) goto done;

    /* amend in place: the same order, a new price (and/or "quantity") */
    writer m = {{0}, 0};
    w_map(&m, 5);
    w_str(&m, "v"); w_int(&m, WIRE_VERSION);
    w_str(&m, "id"); w_int(&m, 3);
    w_kv(&m, "op", "modify_order");
    w_kv(&m, "order_id", order_id);
    w_kv(&m, "price", "49900");
    rc = call(sock, &m, reply, sizeof reply, &len);
done:
    zmq_close(sock);
    zmq_ctx_term(ctx);
    return rc == 0 ? 0 : 1;
}
