/*
 * oexec_heal.c - a non-Python event subscriber that heals its gaps (docs/wire.md,
 * "Sequence and gaps"): every event after FROM_SEQ exactly once, in order, across
 * slow joins, dropped messages and daemon restarts, with nothing but libzmq.
 *
 *   cc -O2 -o oexec_heal scripts/clients/oexec_heal.c -lzmq
 *   ./oexec_heal tcp://127.0.0.1:5555 tcp://127.0.0.1:5556 FROM_SEQ COUNT
 *
 * The algorithm, as the wire spec gives it for any language:
 *   1. last = FROM_SEQ: the seq of the last event delivered (here: printed).
 *   2. At start and after every (re)connect of the SUB socket (a socket monitor's
 *      CONNECTED event), ask the request socket for `replay` from last + 1, paging while
 *      next_seq <= last_seq, and deliver what comes back.
 *   3. For each PUB event (and each replay page: its `epoch`): a new `epoch` resets
 *      `last` to 0 (the log started again: its events from seq 1); seq <=
 *      last is dropped (replay delivered it); seq > last + 1 first replays last + 1 ..
 *      seq - 1; then the event is delivered and last = seq.
 *   4. A flagged repeat (`redelivered`: true) of an event already delivered is dropped
 *      by its key (order id + version + topic, symbol + trade id, ...).
 * Prints one JSON line per delivered event: {"seq":N,"topic":"...","replayed":0|1}; exits
 * 0 once COUNT events were delivered, 1 on a protocol error, 3 on REPLAY_EXPIRED.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define WIRE_VERSION 1
#define PAGE 500
#define KEYS 8192

/* ---- msgpack writer: a flat map of str and int ---------------------------------- */
typedef struct { unsigned char buf[1024]; size_t len; } writer;

static void put_byte(writer *w, unsigned char b) {
    if (w->len >= sizeof w->buf) { fprintf(stderr, "request too large\n"); exit(2); }
    w->buf[w->len++] = b;
}
static void put_be(writer *w, uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; i--) put_byte(w, (unsigned char)(v >> (8 * i)));
}
static void w_str(writer *w, const char *s) {
    size_t n = strlen(s);
    put_byte(w, (unsigned char)(0xa0 | n)); /* the keys and values here are < 32 bytes */
    for (size_t i = 0; i < n; i++) put_byte(w, (unsigned char)s[i]);
}
static void w_int(writer *w, uint64_t v) {
    if (v < 128) put_byte(w, (unsigned char)v);
    else { put_byte(w, 0xcf); put_be(w, v, 8); }
}

/* ---- msgpack reader: the object at hand, skip one, find a key in a map ------------ */
typedef struct { const unsigned char *p, *end; } reader;
enum kind { K_NIL, K_BOOL, K_INT, K_UINT, K_STR, K_BIN, K_ARRAY, K_MAP, K_OTHER, K_BAD };
typedef struct { enum kind kind; uint64_t len; uint64_t u; } head;

static int need(reader *r, size_t n) { return (size_t)(r->end - r->p) >= n; }
static uint64_t be(const unsigned char *p, size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v = (v << 8) | p[i];
    return v;
}

static head next(reader *r) {
    head h = {K_BAD, 0, 0};
    if (!need(r, 1)) return h;
    unsigned char t = *r->p++;
    size_t n;
    if (t <= 0x7f) { h.kind = K_UINT; h.u = t; return h; }
    if (t >= 0xe0) { h.kind = K_INT; return h; }
    if ((t & 0xf0) == 0x80) { h.kind = K_MAP; h.len = t & 0x0f; return h; }
    if ((t & 0xf0) == 0x90) { h.kind = K_ARRAY; h.len = t & 0x0f; return h; }
    if ((t & 0xe0) == 0xa0) { h.kind = K_STR; h.len = t & 0x1f; return h; }
    switch (t) {
    case 0xc0: h.kind = K_NIL; return h;
    case 0xc2: case 0xc3: h.kind = K_BOOL; h.u = t == 0xc3; return h;
    case 0xcc: case 0xcd: case 0xce: case 0xcf:
        n = (size_t)1 << (t - 0xcc); if (!need(r, n)) return h;
        h.kind = K_UINT; h.u = be(r->p, n); r->p += n; return h;
    case 0xd0: case 0xd1: case 0xd2: case 0xd3:
        n = (size_t)1 << (t - 0xd0); if (!need(r, n)) return h;
        h.kind = K_INT; r->p += n; return h;
    case 0xca: case 0xcb:
        n = t == 0xca ? 4 : 8; if (!need(r, n)) return h;
        h.kind = K_OTHER; r->p += n; return h;
    case 0xd9: case 0xda: case 0xdb: case 0xc4: case 0xc5: case 0xc6:
        n = (t == 0xd9 || t == 0xc4) ? 1 : (t == 0xda || t == 0xc5) ? 2 : 4;
        if (!need(r, n)) return h;
        h.kind = t >= 0xd9 ? K_STR : K_BIN; h.len = be(r->p, n); r->p += n; return h;
    case 0xdc: case 0xdd: case 0xde: case 0xdf:
        n = (t == 0xdc || t == 0xde) ? 2 : 4; if (!need(r, n)) return h;
        h.kind = t <= 0xdd ? K_ARRAY : K_MAP; h.len = be(r->p, n); r->p += n; return h;
    default: return h;
    }
}

static int skip(reader *r) {
    head h = next(r);
    if (h.kind == K_BAD) return -1;
    if (h.kind == K_STR || h.kind == K_BIN) {
        if (!need(r, h.len)) return -1;
        r->p += h.len; return 0;
    }
    uint64_t items = h.kind == K_ARRAY ? h.len : h.kind == K_MAP ? 2 * h.len : 0;
    for (uint64_t i = 0; i < items; i++) if (skip(r) < 0) return -1;
    return 0;
}

/* A copy of r positioned at the value of key in the map at r; -1 when absent. */
static int find(reader r, const char *key, reader *out) {
    head h = next(&r);
    if (h.kind != K_MAP) return -1;
    size_t klen = strlen(key);
    for (uint64_t i = 0; i < h.len; i++) {
        head k = next(&r);
        if (k.kind != K_STR || !need(&r, k.len)) return -1;
        int hit = k.len == klen && !memcmp(r.p, key, klen);
        r.p += k.len;
        if (hit) { *out = r; return 0; }
        if (skip(&r) < 0) return -1;
    }
    return -1;
}

static int get_uint(reader r, const char *key, uint64_t *v) {
    reader at;
    if (find(r, key, &at) < 0) return -1;
    head h = next(&at);
    if (h.kind != K_UINT) return -1;
    *v = h.u;
    return 0;
}

/* The string at key, copied into out (cap bytes, NUL-terminated); "" when absent. */
static void get_str(reader r, const char *key, char *out, size_t cap) {
    reader at;
    out[0] = 0;
    if (find(r, key, &at) < 0) return;
    head h = next(&at);
    if (h.kind == K_UINT) { snprintf(out, cap, "%llu", (unsigned long long)h.u); return; }
    if (h.kind != K_STR || !need(&at, h.len) || h.len >= cap) return;
    memcpy(out, at.p, h.len);
    out[h.len] = 0;
}

static int get_true(reader r, const char *key) {
    reader at;
    if (find(r, key, &at) < 0) return 0;
    head h = next(&at);
    return h.kind == K_BOOL && h.u;
}

/* ---- the subscriber's state ------------------------------------------------------ */
static uint64_t last_seq, wanted, delivered;
static char epoch[64];
static char *seen[KEYS]; /* keys of delivered events (a ring: the latest KEYS) */
static size_t seen_next;

/* What makes an event unique (docs/wire.md, "Redelivery"): "" when it has no key. */
static void event_key(reader ev, const char *topic, char *key, size_t cap) {
    char a[96], b[96], c[32];
    reader inner;
    key[0] = 0;
    if (find(ev, "order", &inner) == 0) {
        get_str(inner, "id", a, sizeof a); get_str(inner, "version", b, sizeof b);
        snprintf(key, cap, "%s|%s|%s", topic, a, b);
    } else if (find(ev, "fill", &inner) == 0) {
        get_str(inner, "symbol", a, sizeof a); get_str(inner, "trade_id", b, sizeof b);
        snprintf(key, cap, "%s|%s|%s", topic, a, b);
    } else if (find(ev, "position", &inner) == 0) {
        get_str(inner, "symbol", a, sizeof a); get_str(inner, "position_side", b, sizeof b);
        get_str(inner, "event_time", c, sizeof c);
        snprintf(key, cap, "%s|%s|%s|%s", topic, a, b, c);
    } else if (find(ev, "balance", &inner) == 0) {
        get_str(inner, "asset", a, sizeof a); get_str(inner, "event_time", c, sizeof c);
        snprintf(key, cap, "%s|%s|%s", topic, a, c);
    }
}

static int seen_before(const char *key) {
    for (size_t i = 0; i < KEYS; i++) if (seen[i] && !strcmp(seen[i], key)) return 1;
    return 0;
}

static void remember(const char *key) {
    free(seen[seen_next]);
    seen[seen_next] = strdup(key);
    seen_next = (seen_next + 1) % KEYS;
}

/* Step 3/4 for one event map (from PUB or from a replay page). */
static void deliver(reader ev, int replayed) {
    uint64_t seq;
    char topic[64], ep[64], key[320];
    if (get_uint(ev, "seq", &seq) < 0) return;
    get_str(ev, "topic", topic, sizeof topic);
    get_str(ev, "epoch", ep, sizeof ep);
    if (ep[0] && epoch[0] && strcmp(ep, epoch)) last_seq = 0; /* the log started again */
    if (ep[0]) strcpy(epoch, ep);
    if (seq <= last_seq) return; /* replay delivered it already */
    last_seq = seq;
    event_key(ev, topic, key, sizeof key);
    if (key[0] && get_true(ev, "redelivered") && seen_before(key)) return; /* a repeat */
    if (key[0]) remember(key);
    printf("{\"seq\":%llu,\"topic\":\"%s\",\"replayed\":%d}\n", (unsigned long long)seq, topic,
           replayed);
    fflush(stdout);
    delivered++;
}

/* Step 2: replay from last + 1 up to (not including) before (0: to the newest). */
static int replay(void *req, uint64_t before) {
    static unsigned char reply[1 << 22];
    static uint64_t request_id = 1;
    for (;;) {
        if (before && last_seq + 1 >= before) return 0;
        writer w = {{0}, 0};
        put_byte(&w, 0x85); /* a map of 5 */
        w_str(&w, "v"); w_int(&w, WIRE_VERSION);
        w_str(&w, "id"); w_int(&w, request_id++);
        w_str(&w, "op"); w_str(&w, "replay");
        w_str(&w, "from_seq"); w_int(&w, last_seq + 1);
        w_str(&w, "limit"); w_int(&w, PAGE);
        if (zmq_send(req, w.buf, w.len, 0) < 0) { perror("zmq_send"); return -1; }
        int n = zmq_recv(req, reply, sizeof reply, 0);
        if (n < 0 || (size_t)n > sizeof reply) { fprintf(stderr, "no replay answer\n"); return -1; }
        reader r = {reply, reply + n}, result, events;
        if (!get_true(r, "ok")) {
            char code[64];
            reader error;
            if (find(r, "error", &error) == 0) get_str(error, "code", code, sizeof code);
            else strcpy(code, "?");
            fprintf(stderr, "replay refused: %s\n", code);
            return strcmp(code, "REPLAY_EXPIRED") ? -1 : -3;
        }
        uint64_t next_seq, newest;
        if (find(r, "result", &result) < 0 || find(result, "events", &events) < 0
            || get_uint(result, "next_seq", &next_seq) < 0
            || get_uint(result, "last_seq", &newest) < 0) return -1;
        char page_epoch[64];
        get_str(result, "epoch", page_epoch, sizeof page_epoch);
        if (page_epoch[0] && epoch[0] && strcmp(page_epoch, epoch) && last_seq > 0) {
            /* the log was replaced since our last event: its events from seq 1 */
            strcpy(epoch, page_epoch);
            last_seq = 0;
            continue;
        }
        head list = next(&events);
        if (list.kind != K_ARRAY) return -1;
        for (uint64_t i = 0; i < list.len; i++) {
            reader one = events;
            uint64_t seq = 0;
            get_uint(one, "seq", &seq);
            if (before && seq >= before) return 0;
            deliver(one, 1);
            if (skip(&events) < 0) return -1;
        }
        if (next_seq > newest || next_seq <= last_seq) return 0; /* done, or no progress */
    }
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s REQ_ENDPOINT PUB_ENDPOINT FROM_SEQ COUNT\n", argv[0]);
        return 2;
    }
    last_seq = strtoull(argv[3], NULL, 10);
    wanted = strtoull(argv[4], NULL, 10);
    void *ctx = zmq_ctx_new();
    void *req = zmq_socket(ctx, ZMQ_REQ);
    void *sub = zmq_socket(ctx, ZMQ_SUB);
    int timeout_ms = 10000, linger = 0;
    zmq_setsockopt(req, ZMQ_RCVTIMEO, &timeout_ms, sizeof timeout_ms);
    zmq_setsockopt(req, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(sub, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0);
    /* step 2's trigger: tell us each time the SUB socket (re)connects */
    zmq_socket_monitor(sub, "inproc://oexec-heal-monitor", ZMQ_EVENT_CONNECTED);
    void *monitor = zmq_socket(ctx, ZMQ_PAIR);
    zmq_setsockopt(monitor, ZMQ_LINGER, &linger, sizeof linger);
    zmq_connect(monitor, "inproc://oexec-heal-monitor");
    if (zmq_connect(req, argv[1]) < 0 || zmq_connect(sub, argv[2]) < 0) {
        perror("zmq_connect");
        return 2;
    }
    int rc = 0;
    static unsigned char body[1 << 20];
    char topic[128];
    while (delivered < wanted) {
        zmq_pollitem_t items[] = {{sub, 0, ZMQ_POLLIN, 0}, {monitor, 0, ZMQ_POLLIN, 0}};
        if (zmq_poll(items, 2, 1000) < 0) { rc = 1; break; }
        if (items[1].revents & ZMQ_POLLIN) { /* (re)connected: catch up */
            zmq_msg_t frame;
            int more = 1;
            while (more) {
                zmq_msg_init(&frame);
                zmq_msg_recv(&frame, monitor, 0);
                more = zmq_msg_more(&frame);
                zmq_msg_close(&frame);
            }
            if ((rc = replay(req, 0)) < 0) break;
        }
        if (!(items[0].revents & ZMQ_POLLIN)) continue;
        int t = zmq_recv(sub, topic, sizeof topic, 0);
        int n = zmq_recv(sub, body, sizeof body, 0);
        if (t < 0 || n < 0 || (size_t)n > sizeof body) continue; /* malformed: skip */
        reader ev = {body, body + n};
        uint64_t seq;
        if (get_uint(ev, "seq", &seq) < 0) continue;
        char ep[64];
        get_str(ev, "epoch", ep, sizeof ep);
        if (ep[0] && epoch[0] && strcmp(ep, epoch)) { /* a new log: from its seq 1 */
            strcpy(epoch, ep);
            last_seq = 0;
        }
        if (seq > last_seq + 1 && (rc = replay(req, seq)) < 0) break;
        deliver(ev, 0);
    }
    zmq_close(monitor);
    zmq_close(sub);
    zmq_close(req);
    zmq_ctx_term(ctx);
    return rc == 0 ? 0 : rc == -3 ? 3 : 1;
}
