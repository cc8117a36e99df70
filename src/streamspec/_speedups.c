/*
 * Compiled fast paths of streamspec's ChunkDecoder (optional: decoder.py has
 * the same logic in Python and uses it when this module is not built).
 *
 * Both recognise only what needs no interpretation: runs of data-only events,
 *
 *     data:<payload>\n\n
 *
 * with no CR anywhere and no LF inside a payload. The decoding fast mode also
 * passes over what the WHATWG algorithm ignores between and inside such
 * events: blank lines and comment lines (": keep-alive"). Everything else is
 * left to the Python general path, which runs the full algorithm. The payload
 * keeps the optional space after "data:"; msgspec skips it as JSON whitespace.
 *
 * - DecoderCore: the base class of ChunkDecoder. In fast mode its feed()
 *   decodes any read without CR whose events are data-only (and the
 *   unfinished event they complete) without entering the interpreter. At the
 *   first event it cannot take ([DONE], another kind of line, a payload for
 *   the careful path) it keeps what it decoded and hands the rest of the read
 *   to the subclass's _continue(); a read it cannot start goes, with nothing
 *   changed, to _feed().
 *   The reads a live socket most often delivers take one pass over their
 *   bytes (feed_quick): one whole event, the first line of an event (the read
 *   is kept as it came, the "head", not copied), and the rest of an event
 *   begun in a read before. The list feed() returns for such a read is the
 *   one it returned last time when the caller let that one go.
 * - split_events(data, start, head): cuts a buffer into payloads at C speed.
 *
 * Python code runs inside feed() (msgspec calls a chunk type's __post_init__,
 * __bool__ of an `error` value, a metaclass's lookups), and it may do anything
 * to the decoder. So feed() works on a snapshot: strong references to the
 * decode callable and the tail, the tail's bytes copied before the first call
 * into Python, the limits read once. Before it commits it checks that nothing
 * changed; if something did, the Python path decides with the state as the
 * hook left it. A feed() entered again from such a hook raises RuntimeError.
 * A payload whose decoding fails in any way (msgspec, the type's own code)
 * goes to the general path, which reports it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__) && defined(__GNUC__)
#include <emmintrin.h>
#define HAVE_SSE2_PROBE 1
#if defined(__x86_64__) && (defined(__clang__) || __GNUC__ >= 5)
#include <immintrin.h>
#define HAVE_AVX2_PROBE 1
#endif
#endif

static PyObject *DecodeError = NULL;  /* msgspec.DecodeError */
static PyObject *Unset = NULL;        /* msgspec.UNSET */
static PyObject *str_error = NULL;    /* "error" */
static PyObject *str_feed = NULL;     /* "_feed" */
static PyObject *str_continue = NULL; /* "_continue" */
static PyObject *str_feed_public = NULL; /* "feed" */
static PyObject *str_done = NULL;        /* "done" */

static const char ERROR_KEY[] = "\"error\"";
#define ERROR_KEY_LEN 7

/* Whether p[0:n] holds '"error"'. Candidates are found by its rare pair "rr"
 * (offsets 2 and 3), sixteen positions at a time where SSE2 is available. */
#ifdef HAVE_AVX2_PROBE
/* The same probe 32 positions at a time, for CPUs with AVX2 (checked at import). */
__attribute__((target("avx2"))) static int
has_error_key_avx2(const char *p, Py_ssize_t n)
{
    const __m256i r = _mm256_set1_epi8('r');
    Py_ssize_t i = 0;
    for (;;) { /* n >= 38: each step reads p[i+2 .. i+34] and checks up to p[i+37] */
        if (i + 38 > n) {
            i = n - 38;
        }
        __m256i a = _mm256_loadu_si256((const __m256i *)(const void *)(p + i + 2));
        __m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(p + i + 3));
        unsigned mask = (unsigned)_mm256_movemask_epi8(
            _mm256_and_si256(_mm256_cmpeq_epi8(a, r), _mm256_cmpeq_epi8(b, r)));
        while (mask != 0) {
            int k = __builtin_ctz(mask);
            if (memcmp(p + i + k, ERROR_KEY, ERROR_KEY_LEN) == 0) {
                return 1;
            }
            mask &= mask - 1;
        }
        if (i + 38 >= n) {
            return 0;
        }
        i += 32;
    }
}

static int use_avx2 = 0;

/* One pass over a read p[0:n] (n >= 38) for a chunk type without `error`:
 * returns whether it holds a CR, and sets *key when '"error"' may be in it
 * (then each payload is probed). Where no key is found here, none is in any
 * payload of the read, and the per-payload probe is skipped. */
__attribute__((target("avx2"))) static int
scan_read_avx2(const char *p, Py_ssize_t n, int *key)
{
    if (p[0] == '\r' || p[1] == '\r' || p[n - 4] == '\r' || p[n - 3] == '\r' ||
        p[n - 2] == '\r' || p[n - 1] == '\r') {
        return 1;
    }
    const __m256i r = _mm256_set1_epi8('r');
    const __m256i cr = _mm256_set1_epi8('\r');
    __m256i seen = _mm256_setzero_si256();
    int found = 0;
    Py_ssize_t i = 0;
    for (;;) { /* each step covers p[i+2 .. i+33] for CR and key candidates up to p[i+37] */
        if (i + 38 > n) {
            i = n - 38;
        }
        __m256i a = _mm256_loadu_si256((const __m256i *)(const void *)(p + i + 2));
        __m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(p + i + 3));
        seen = _mm256_or_si256(seen, _mm256_cmpeq_epi8(a, cr));
        unsigned mask = (unsigned)_mm256_movemask_epi8(
            _mm256_and_si256(_mm256_cmpeq_epi8(a, r), _mm256_cmpeq_epi8(b, r)));
        while (mask != 0 && !found) {
            int k = __builtin_ctz(mask);
            found = memcmp(p + i + k, ERROR_KEY, ERROR_KEY_LEN) == 0;
            mask &= mask - 1;
        }
        if (i + 38 >= n) {
            break;
        }
        i += 32;
    }
    *key = found;
    return !_mm256_testz_si256(seen, seen);
}
#endif

/* For a chunk type without `error`: whether the read p[0:n] holds a CR, and
 * whether '"error"' may be in it (*key; 1 where the CPU has no vector scan). */
static int
read_has_cr(const char *p, Py_ssize_t n, int *key)
{
    *key = 1;
#ifdef HAVE_AVX2_PROBE
    if (use_avx2 && n >= 38) {
        return scan_read_avx2(p, n, key);
    }
#endif
    return memchr(p, '\r', (size_t)n) != NULL;
}

static int
has_error_key(const char *p, Py_ssize_t n)
{
#ifdef HAVE_AVX2_PROBE
    if (use_avx2 && n >= 38) {
        return has_error_key_avx2(p, n);
    }
#endif
    Py_ssize_t i = 0;
#ifdef HAVE_SSE2_PROBE
    if (n >= 22) {
        const __m128i r = _mm_set1_epi8('r');
        /* Each step loads p[i+2 .. i+18] and checks candidates up to p[i+21]; the
         * last step is moved back to end at n, overlapping the one before it. */
        for (;;) {
            if (i + 22 > n) {
                i = n - 22;
            }
            __m128i a = _mm_loadu_si128((const __m128i *)(const void *)(p + i + 2));
            __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(p + i + 3));
            unsigned mask = (unsigned)_mm_movemask_epi8(
                _mm_and_si128(_mm_cmpeq_epi8(a, r), _mm_cmpeq_epi8(b, r)));
            while (mask != 0) {
                int k = __builtin_ctz(mask);
                if (memcmp(p + i + k, ERROR_KEY, ERROR_KEY_LEN) == 0) {
                    return 1;
                }
                mask &= mask - 1;
            }
            if (i + 22 >= n) {
                return 0;
            }
            i += 16;
        }
    }
#endif
    for (; i + ERROR_KEY_LEN <= n; i++) {
        if (p[i + 2] == 'r' && p[i + 3] == 'r' && memcmp(p + i, ERROR_KEY, ERROR_KEY_LEN) == 0) {
            return 1;
        }
    }
    return 0;
}

typedef struct {
    PyObject_HEAD
    PyObject *owner;   /* the bytes object the payload lies in, or NULL */
    const char *buf;
    Py_ssize_t len;
    Py_ssize_t exports;
} ViewObject;

static int
View_getbuffer(ViewObject *self, Py_buffer *view, int flags)
{
    if (self->owner == NULL) {
        PyErr_SetString(PyExc_BufferError, "the payload view is not in use");
        return -1;
    }
    if (PyBuffer_FillInfo(view, (PyObject *)self, (void *)self->buf, self->len, 1, flags) < 0) {
        return -1;
    }
    self->exports++;
    return 0;
}

static void
View_releasebuffer(ViewObject *self, Py_buffer *view)
{
    self->exports--;
}

static void
View_dealloc(ViewObject *self)
{
    Py_XDECREF(self->owner);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyBufferProcs View_as_buffer = {
    .bf_getbuffer = (getbufferproc)View_getbuffer,
    .bf_releasebuffer = (releasebufferproc)View_releasebuffer,
};

static PyTypeObject ViewType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "streamspec._speedups.PayloadView",
    .tp_basicsize = sizeof(ViewObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A payload inside a read, as msgspec decodes it.",
    .tp_dealloc = (destructor)View_dealloc,
    .tp_as_buffer = &View_as_buffer,
};

typedef struct {
    PyObject_HEAD
    PyObject *decode;          /* msgspec Decoder.decode, bound */
    PyObject *error_of;        /* chunk -> truthy when it carries an error (Python path) */
    PyObject *tail;            /* exact bytearray: the unfinished event (fast mode) */
    Py_ssize_t shortcut_limit; /* >= 0: fast mode on; -1: off (the Python twin also
                                * uses it as the largest one-event read) */
    Py_ssize_t max_event_size;
    long long consumed;        /* stream offset where the unfinished event starts */
    long long events;          /* data events seen */
    char has_error_field;      /* the chunk type declares `error` */
    char busy;                 /* inside feed() */
    PyObject *error_owner;     /* the chunk type whose `error` lookup is cached */
    unsigned int error_tag;    /* that type's version tag when it was cached */
    Py_ssize_t error_offset;   /* >= 0: the validated slot offset of `error`; else getattr */
    ViewObject *view;          /* the payload view, reused (or NULL) */
    char fast;                 /* the last feed() was decided here, without the Python path */
    PyObject *join;            /* join_buffer()'s reusable bytes, or NULL */
    PyObject *head;            /* exact bytes: the first line of the unfinished event as a
                                * read brought it, the tail being empty; or NULL. Only
                                * feed_quick() reads it: the tail getter and every other
                                * path first move it into the tail (settle_head) */
    PyObject *one;             /* the last one-chunk list feed() returned, or NULL */
    PyObject *none;            /* the last empty list feed() returned, or NULL */
    long long *meter_times;    /* set_meter(): the readings of the token chunks, in order */
    Py_ssize_t meter_count, meter_capacity;
    PyObject *meter_note;      /* set_meter(): called with (reading, chunk) for the others */
    PyObject *meter_clock;     /* set_meter(): the clock to call, or NULL for perf_counter_ns */
    long long metered_chars;   /* code points of the metered token chunks */
    long long done_ns;         /* the reading of the feed() that saw [DONE], 0 before */
    char meter_done;           /* `done` was found set (by a metered feed(), or before) */
} CoreObject;

/* What feed() read from the decoder before its first call into Python. */
typedef struct {
    PyObject *decode;     /* strong */
    vectorcallfunc call;  /* decode's vectorcall function, or NULL */
    PyObject *tail;       /* strong */
    Py_ssize_t tn;        /* the tail's size */
    Py_ssize_t shortcut_limit;
    Py_ssize_t max;
    long long consumed;
    long long events;
    char has_error_field;
    char probe;           /* payloads are probed for '"error"' (a type without it) */
    char ran_python;      /* a call into Python was made (the state may have changed) */
} Snapshot;

static int
Core_traverse(CoreObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->decode);
    Py_VISIT(self->error_of);
    Py_VISIT(self->tail);
    Py_VISIT(self->error_owner);
    Py_VISIT(self->meter_note);
    Py_VISIT(self->meter_clock);
    Py_VISIT(self->one);
    Py_VISIT(self->none);
    return 0;
}

static int
Core_clear(CoreObject *self)
{
    Py_CLEAR(self->decode);
    Py_CLEAR(self->error_of);
    Py_CLEAR(self->tail);
    Py_CLEAR(self->error_owner);
    Py_CLEAR(self->view);
    Py_CLEAR(self->join);
    Py_CLEAR(self->one);
    Py_CLEAR(self->none);
    Py_CLEAR(self->head);
    PyMem_Free(self->meter_times);
    self->meter_times = NULL;
    self->meter_count = self->meter_capacity = 0;
    Py_CLEAR(self->meter_note);
    Py_CLEAR(self->meter_clock);
    return 0;
}

static void
Core_dealloc(CoreObject *self)
{
    PyObject_GC_UnTrack(self);
    Core_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
Core_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    CoreObject *self = (CoreObject *)type->tp_alloc(type, 0);
    if (self != NULL) {
        self->shortcut_limit = -1;
        self->error_offset = -1;
    }
    return (PyObject *)self;
}

/* The version tag of a type, 0 when it has none (its attributes may change
 * unnoticed): a cached lookup on the type is valid while the tag is the same. */
static unsigned int
version_tag(PyTypeObject *type)
{
#ifdef Py_TPFLAGS_VALID_VERSION_TAG
    if (!PyType_HasFeature(type, Py_TPFLAGS_VALID_VERSION_TAG)) {
        return 0;
    }
#endif
    return type->tp_version_tag;
}

/* The offset of the object slot behind `type.error` when reading it directly
 * is exactly what getattr would do, else -1. The descriptor must be a member
 * descriptor of an object slot, owned by `type` or one of its bases, lying
 * inside that owner's instances, with no custom attribute lookup in the way. */
static Py_ssize_t
member_slot(PyTypeObject *type, PyObject *name)
{
    if (type->tp_getattro != PyObject_GenericGetAttr) {
        return -1;
    }
    PyObject *descr = _PyType_Lookup(type, name); /* borrowed; runs no Python code */
    if (descr == NULL || !Py_IS_TYPE(descr, &PyMemberDescr_Type)) {
        return -1;
    }
    PyMemberDescrObject *member = (PyMemberDescrObject *)descr;
    PyMemberDef *def = member->d_member;
    PyTypeObject *owner = member->d_common.d_type;
    if (def == NULL || owner == NULL || (def->type != T_OBJECT_EX && def->type != T_OBJECT)) {
        return -1;
    }
#ifdef Py_RELATIVE_OFFSET
    if (def->flags & Py_RELATIVE_OFFSET) {
        return -1;
    }
#endif
    if (!PyType_IsSubtype(type, owner) || def->offset < (Py_ssize_t)sizeof(PyObject) ||
        def->offset > owner->tp_basicsize - (Py_ssize_t)sizeof(PyObject *)) {
        return -1;
    }
    return def->offset;
}

/* Whether the chunk's `error` field is set (truthy): 1, 0, or -1 with an
 * exception set. msgspec stores Struct fields in slots behind member
 * descriptors; the validated slot offset is cached per chunk type (and type
 * version) and read directly after that. */
static int
carries_error(CoreObject *self, PyObject *chunk)
{
    PyTypeObject *type = Py_TYPE(chunk);
    unsigned int tag = version_tag(type);
    if ((PyObject *)type != self->error_owner || tag == 0 || tag != self->error_tag) {
        Py_ssize_t offset = member_slot(type, str_error);
        Py_INCREF(type);
        Py_XSETREF(self->error_owner, (PyObject *)type);
        self->error_offset = offset;
        self->error_tag = version_tag(type); /* the lookup may have assigned one */
    }
    PyObject *value;
    if (self->error_offset >= 0) {
        value = *(PyObject **)((char *)chunk + self->error_offset);
        if (value == NULL || value == Py_None || value == Unset) {
            return 0;
        }
        Py_INCREF(value); /* __bool__ may clear the slot */
    }
    else {
        value = PyObject_GetAttr(chunk, str_error);
        if (value == NULL) {
            return -1;
        }
    }
    int truth = PyObject_IsTrue(value);
    Py_DECREF(value);
    return truth;
}

/* After a call into Python failed (msgspec, the chunk type's own code, the
 * truth test of its `error`): 0, with the exception cleared, when the general
 * path should take the payload and say what it is (it reports an Exception of
 * decoding as a malformed event, deep nesting included); -1 to let the
 * exception through with nothing committed (KeyboardInterrupt, SystemExit:
 * they are not about the payload). */
static int
hand_over_failure(void)
{
    if (PyErr_ExceptionMatches(PyExc_Exception)) {
        PyErr_Clear();
        return 0;
    }
    return -1;
}

/* Decodes one payload; returns a new reference to the chunk, or NULL with no
 * exception set when the general path must decide (a payload that fails to
 * decode, a chunk that carries an error, an exception of Python code), or
 * NULL with an exception set (KeyboardInterrupt, a failed allocation). */
static PyObject *
decode_payload(CoreObject *self, Snapshot *snap, PyObject *owner, const char *p,
               Py_ssize_t pn)
{
    ViewObject *view = self->view;
    if (view == NULL) {
        view = PyObject_New(ViewObject, &ViewType);
        if (view == NULL) {
            return NULL;
        }
        view->owner = NULL;
        view->exports = 0;
        self->view = view;
    }
    snap->ran_python = 1;
    Py_INCREF(view); /* self->view may be replaced while msgspec reads it */
    Py_INCREF(owner);
    view->owner = owner;
    view->buf = p;
    view->len = pn;
    PyObject *args[2] = {NULL, (PyObject *)view}; /* args[0]: room for a bound method's self */
    PyObject *chunk = snap->call != NULL
                          ? snap->call(snap->decode, args + 1, 1 | PY_VECTORCALL_ARGUMENTS_OFFSET,
                                       NULL)
                          : PyObject_CallOneArg(snap->decode, (PyObject *)view);
    if (chunk != NULL && PyErr_Occurred()) {
        Py_CLEAR(chunk); /* a result with an exception set: a failure, as the call API says */
    }
    if (Py_REFCNT(view) == 2 && view->exports == 0 && self->view == view) {
        Py_CLEAR(view->owner); /* nobody kept it: reused for the next payload */
    }
    else if (self->view == view) {
        Py_CLEAR(self->view); /* kept: it keeps its owner, the next payload gets a new one */
    }
    Py_DECREF(view);
    if (chunk == NULL) {
        hand_over_failure(); /* [DONE], an error payload, bad data, deep nesting... */
        return NULL;
    }
    if (snap->has_error_field) {
        int truth = carries_error(self, chunk);
        if (truth != 0) {
            Py_DECREF(chunk);
            if (truth < 0) {
                hand_over_failure();
            }
            return NULL; /* an error chunk, or a failed test: the general path says */
        }
    }
    return chunk;
}

/* -- line endings -------------------------------------------------------------------------- */

/* The offset of the first LF or CR in p[0:n], or n. Vector steps where the
 * CPU has them; the last step is moved back to end at n, overlapping the one
 * before it, so no byte is looked at one by one. Inlined into its callers:
 * the call itself measured about 0.02x of a chunk's decoding. */
#ifdef HAVE_AVX2_PROBE
/* The bytes of `a` that are LF or CR (0xFF, others 0), with one table lookup
 * and one compare instead of two compares: at each low nibble the table holds
 * the one byte below 0x80 that a line ending with that nibble can be (LF at
 * 10, CR at 13) or 0xFF, which no byte below 0x80 equals; pshufb gives 0 for
 * the bytes from 0x80 up, which equal no 0. Measured on the one-event read:
 * about 0.015x of a chunk's decoding less than two compares. */
__attribute__((target("avx2"))) static inline __m256i
line_ends_avx2(__m256i a)
{
    const __m256i table = _mm256_setr_epi8(-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, '\n', -1, -1,
                                           '\r', -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                           '\n', -1, -1, '\r', -1, -1);
    return _mm256_cmpeq_epi8(_mm256_shuffle_epi8(table, a), a);
}

__attribute__((target("avx2"))) static Py_ssize_t
line_end_avx2(const char *p, Py_ssize_t n)
{
    Py_ssize_t i = 0;
    for (; i + 64 <= n; i += 64) { /* two vectors a step, one test */
        __m256i a = _mm256_loadu_si256((const __m256i *)(const void *)(p + i));
        __m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(p + i + 32));
        __m256i hits = _mm256_or_si256(line_ends_avx2(a), line_ends_avx2(b));
        if (!_mm256_testz_si256(hits, hits)) {
            break; /* in p[i:i+64]: the steps below say where */
        }
    }
    for (;;) { /* n >= 32 */
        if (i + 32 > n) {
            i = n - 32;
        }
        __m256i a = _mm256_loadu_si256((const __m256i *)(const void *)(p + i));
        unsigned mask = (unsigned)_mm256_movemask_epi8(line_ends_avx2(a));
        if (mask != 0) {
            return i + __builtin_ctz(mask);
        }
        if (i + 32 >= n) {
            return n;
        }
        i += 32;
    }
}
#endif

static inline __attribute__((always_inline)) Py_ssize_t
line_end(const char *p, Py_ssize_t n)
{
#ifdef HAVE_AVX2_PROBE
    if (use_avx2 && n >= 32) {
        return line_end_avx2(p, n);
    }
#endif
#ifdef HAVE_SSE2_PROBE
    if (n >= 16) {
        const __m128i lf = _mm_set1_epi8('\n');
        const __m128i cr = _mm_set1_epi8('\r');
        Py_ssize_t i = 0;
        for (;;) {
            if (i + 16 > n) {
                i = n - 16;
            }
            __m128i a = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
            unsigned mask = (unsigned)_mm_movemask_epi8(
                _mm_or_si128(_mm_cmpeq_epi8(a, lf), _mm_cmpeq_epi8(a, cr)));
            if (mask != 0) {
                return i + __builtin_ctz(mask);
            }
            if (i + 16 >= n) {
                return n;
            }
            i += 16;
        }
    }
#endif
    for (Py_ssize_t i = 0; i < n; i++) {
        if (p[i] == '\n' || p[i] == '\r') {
            return i;
        }
    }
    return n;
}

/* Whether s[0:n] holds a blank line ("\n\n"), or one straddles the join with
 * a tail ending in "\n". Returns the offset just past it, or -1. */
static Py_ssize_t
blank_line_end(const char *s, Py_ssize_t n, int tail_ends_with_lf)
{
    if (tail_ends_with_lf && n > 0 && s[0] == '\n') {
        return 1;
    }
    for (Py_ssize_t i = 0; i + 1 < n; i++) {
        const char *newline = memchr(s + i, '\n', (size_t)(n - 1 - i));
        if (newline == NULL) {
            return -1;
        }
        i = newline - s;
        if (s[i + 1] == '\n') {
            return i + 2;
        }
    }
    return -1;
}

/* An event's size as the SSE parser counts it: a final line ending excluded. */
static Py_ssize_t
event_size(const char *s, Py_ssize_t n)
{
    return n > 0 && s[n - 1] == '\n' ? n - 1 : n;
}

/* Whether an unfinished block may wait in the tail: it starts like a data
 * line or a comment. Anything else (a whole-body JSON document, a BOM, a
 * field the fast mode never takes) goes to the general path at once. */
static int
tail_may_start(const char *s, Py_ssize_t n)
{
    if (n == 0 || s[0] == ':') {
        return 1;
    }
    return memcmp(s, "data:", (size_t)(n < 5 ? n : 5)) == 0;
}

/* split_events' framing: appends the payload of each consecutive data-only
 * event of s[pos:n] to `out` and sets *stop to where they end. Returns 1 when
 * it reached an event still arriving, 0 at any other line, -1 on error. */
static int
frame_payloads(const char *s, Py_ssize_t n, Py_ssize_t pos, PyObject *out, Py_ssize_t *stop)
{
    *stop = pos;
    while (pos < n) {
        const char *newline = memchr(s + pos, '\n', (size_t)(n - pos));
        if (newline == NULL) {
            break; /* a line still arriving */
        }
        Py_ssize_t end = newline - s;
        if (end + 1 >= n) {
            break; /* a complete line, its blank line still arriving */
        }
        if (s[end + 1] != '\n' || end - pos < 5 || memcmp(s + pos, "data:", 5) != 0) {
            return 0; /* not a data-only event */
        }
        PyObject *item = PyBytes_FromStringAndSize(s + pos + 5, end - pos - 5);
        if (item == NULL) {
            return -1;
        }
        int failed = PyList_Append(out, item);
        Py_DECREF(item);
        if (failed) {
            return -1;
        }
        pos = end + 2;
        *stop = pos;
    }
    return 1;
}

/* Adds `chunk` (stolen) to the list *chunks, which is created at the first
 * one. Created empty: its first append makes room for four, where a list
 * made for one would be reallocated at the second. */
static int
add_chunk(PyObject **chunks, PyObject *chunk)
{
    if (*chunks == NULL) {
        *chunks = PyList_New(0);
        if (*chunks == NULL) {
            Py_DECREF(chunk);
            return -1;
        }
    }
    int failed = PyList_Append(*chunks, chunk);
    Py_DECREF(chunk);
    return failed;
}

/* The decoding fast mode's framing of s[pos:n]: blocks of comment lines and
 * at most one data line, each ended by a blank line; blank lines between
 * blocks. Each payload is decoded while it is still in cache and its chunk
 * appended to `chunks`; a block without data is a no-op. Sets *stop to the
 * end of the last block taken. Returns 1 when it reached a block still
 * arriving, 0 when it stopped before a block the general path must handle
 * (another kind of line, a second data line, [DONE], an oversized block, a
 * payload that fails to decode or carries an error), -1 on a Python error. */
static int
frame_decode(CoreObject *self, Snapshot *snap, PyObject *owner, Py_ssize_t n, Py_ssize_t pos,
             PyObject **chunks, Py_ssize_t *stop)
{
    const char *s = PyBytes_AS_STRING(owner); /* s[0:n]: the read, or the start of `join` */
    *stop = pos;
    while (pos < n) {
        if (s[pos] == '\n') { /* a blank line between blocks: nothing to dispatch */
            pos++;
            *stop = pos;
            continue;
        }
        Py_ssize_t start = pos, last = pos;
        const char *p = NULL;
        Py_ssize_t pn = 0;
        for (;;) {
            /* After a line, the next is most often the blank line that ends the block.
             * One pass finds the line's end, LF or CR: at a CR the general path
             * takes over, so none is ever in a block this loop takes or leaves
             * in the tail. */
            Py_ssize_t end = pos < n && s[pos] == '\n' ? pos : pos + line_end(s + pos, n - pos);
            if (end == n) {
                return 1; /* the block is still arriving */
            }
            if (s[end] == '\r') {
                return 0;
            }
            if (end == pos) {
                break; /* the blank line that ends the block */
            }
            if (s[pos] != ':') { /* not a comment: the block's one data line */
                if (p != NULL || end - pos < 5 || memcmp(s + pos, "data:", 5) != 0) {
                    return 0;
                }
                p = s + pos + 5;
                pn = end - pos - 5;
            }
            last = end;
            pos = end + 1;
        }
        /* The block runs from start to its last line's end (the parser's count). */
        if (last - start > snap->max) {
            return 0;
        }
        if (p != NULL) {
            Py_ssize_t j = 0;
            while (j < pn && (p[j] == ' ' || p[j] == '\t')) {
                j++;
            }
            if (j < pn && p[j] == '[') {
                return 0; /* [DONE] (or an array) */
            }
            if (snap->probe && has_error_key(p, pn)) {
                return 0; /* the type cannot show an error member: the general path looks */
            }
            PyObject *chunk = decode_payload(self, snap, owner, p, pn);
            if (chunk == NULL) {
                return PyErr_Occurred() ? -1 : 0;
            }
            if (add_chunk(chunks, chunk) < 0) {
                return -1;
            }
        }
        pos++; /* past the blank line */
        *stop = pos;
    }
    return 1;
}

/* Whether the decoder is as feed() found it: nothing Python code ran into
 * (a chunk type's hook) replaced, resized or rewrote what feed() commits to. */
static int
unchanged(CoreObject *self, const Snapshot *snap, const char *tail_copy)
{
    return !snap->ran_python || (self->decode == snap->decode && self->tail == snap->tail &&
           PyByteArray_GET_SIZE(snap->tail) == snap->tn &&
           (snap->tn == 0 || memcmp(PyByteArray_AS_STRING(snap->tail), tail_copy,
                                    (size_t)snap->tn) == 0) &&
           self->shortcut_limit == snap->shortcut_limit && self->max_event_size == snap->max &&
           self->consumed == snap->consumed && self->events == snap->events &&
           self->has_error_field == snap->has_error_field);
}

/* Sets the (validated) tail to s[0:n]. Within the buffer it already has, the
 * bytes are written in place: PyByteArray_Resize would reallocate whenever the
 * size falls under half the allocation, which for one event split across two
 * reads is twice per event. A large buffer holding little is resized, so a
 * big event does not keep its memory for the rest of the stream. */
static int
set_tail(PyObject *tail, const char *s, Py_ssize_t n)
{
    PyByteArrayObject *b = (PyByteArrayObject *)tail;
    if (b->ob_exports == 0 && b->ob_alloc > 0 && b->ob_start != NULL &&
        (b->ob_start - b->ob_bytes) + n + 1 <= b->ob_alloc &&
        (b->ob_alloc <= 65536 || n >= b->ob_alloc / 4)) {
        if (n > 0) {
            memcpy(b->ob_start, s, (size_t)n);
        }
        b->ob_start[n] = '\0';
        Py_SET_SIZE(b, n);
        return 0;
    }
    if (PyByteArray_Resize(tail, n) < 0) {
        return -1;
    }
    if (n > 0) {
        memcpy(PyByteArray_AS_STRING(tail), s, (size_t)n);
    }
    return 0;
}

/* Appends s[0:n] to the (validated) tail, in place when it fits. */
static int
append_tail(PyObject *tail, const char *s, Py_ssize_t n)
{
    PyByteArrayObject *b = (PyByteArrayObject *)tail;
    Py_ssize_t tn = Py_SIZE(b);
    if (b->ob_exports == 0 && b->ob_alloc > 0 && b->ob_start != NULL &&
        (b->ob_start - b->ob_bytes) + tn + n + 1 <= b->ob_alloc) {
        memcpy(b->ob_start + tn, s, (size_t)n);
        b->ob_start[tn + n] = '\0';
        Py_SET_SIZE(b, tn + n);
        return 0;
    }
    if (PyByteArray_Resize(tail, tn + n) < 0) {
        return -1;
    }
    memcpy(PyByteArray_AS_STRING(tail) + tn, s, (size_t)n);
    return 0;
}

/* Moves the head (the start of an event kept as its read brought it) into
 * the tail, where everything but feed_quick() looks for the unfinished
 * event. 0, or -1 with an exception set and nothing moved. */
static int
settle_head(CoreObject *self)
{
    PyObject *head = self->head;
    if (head == NULL) {
        return 0;
    }
    if (self->tail != NULL &&
        append_tail(self->tail, PyBytes_AS_STRING(head), PyBytes_GET_SIZE(head)) < 0) {
        return -1;
    }
    self->head = NULL;
    Py_DECREF(head);
    return 0;
}

/* Commits the events decoded so far (`used` bytes of the stream, counted from
 * the unfinished event's start) and hands the rest of the read, which starts
 * at a clean event boundary, to the general path: self._continue(rest, chunks).
 * Steals the reference to `chunks`. */
static PyObject *
hand_over(CoreObject *self, const Snapshot *snap, const char *rest, Py_ssize_t n,
          Py_ssize_t used, PyObject *chunks)
{
    if (set_tail(snap->tail, NULL, 0) < 0) {
        Py_DECREF(chunks);
        return NULL;
    }
    self->consumed += used;
    self->events += PyList_GET_SIZE(chunks);
    PyObject *bytes = PyBytes_FromStringAndSize(rest, n);
    if (bytes == NULL) {
        Py_DECREF(chunks);
        return NULL;
    }
    PyObject *out = PyObject_CallMethodObjArgs((PyObject *)self, str_continue, bytes, chunks, NULL);
    Py_DECREF(bytes);
    Py_DECREF(chunks);
    return out;
}

/* A bytes object of at least n bytes, owned by the caller, to join the
 * unfinished event and the read that completes it: the decoder's own buffer
 * when nothing else holds it (a payload view kept by Python code keeps it, and
 * the next join gets a new one), so a split event is not one more allocation.
 * Only the first n bytes are meaningful; it is never seen by Python code. An
 * event over 64 KiB gets a buffer of its own, which is not kept. */
#define JOIN_KEEP 65536
static PyObject *
join_buffer(CoreObject *self, Py_ssize_t n)
{
    if (n > JOIN_KEEP) {
        return PyBytes_FromStringAndSize(NULL, n);
    }
    PyObject *join = self->join;
    if (join != NULL && Py_REFCNT(join) == 1 && PyBytes_GET_SIZE(join) >= n) {
        return Py_NewRef(join);
    }
    Py_ssize_t size = n < 1024 ? 1024 : n;
    PyObject *fresh = PyBytes_FromStringAndSize(NULL, size);
    if (fresh == NULL) {
        return NULL;
    }
    Py_XSETREF(self->join, Py_NewRef(fresh));
    return fresh;
}

/* feed()'s result for a read that completes one chunk (stolen), or none:
 * the list it returned last time when the caller let it go (nothing else
 * holds it and it is as feed() left it), else a new one, which is kept. A
 * read of a live stream most often brings one event, and its list is most
 * often dropped as soon as its chunk is taken out: reused, it costs no
 * allocation and no deallocation. The chunk a reused list held is handed to
 * the caller in *previous, to release once the decoder is consistent (its
 * finalizer may run Python code). NULL on failure, with the chunk released. */
static PyObject *
result_list(CoreObject *self, PyObject *chunk, PyObject **previous)
{
    PyObject **slot = chunk != NULL ? &self->one : &self->none;
    PyObject *list = *slot;
    Py_ssize_t size = chunk != NULL ? 1 : 0;
    *previous = NULL;
    if (list != NULL && Py_REFCNT(list) == 1 && PyList_CheckExact(list) &&
        PyList_GET_SIZE(list) == size) {
        if (chunk != NULL) {
            *previous = PyList_GET_ITEM(list, 0);
            PyList_SET_ITEM(list, 0, chunk);
        }
        return Py_NewRef(list);
    }
    list = PyList_New(size);
    if (list == NULL) {
        Py_XDECREF(chunk);
        return NULL;
    }
    if (chunk != NULL) {
        PyList_SET_ITEM(list, 0, chunk);
    }
    *previous = *slot; /* released by the caller too: it may hold a chunk */
    *slot = Py_NewRef(list);
    return list;
}

/* Fast mode for a read without CR (`data`, exact bytes): the unfinished event
 * grows, or the read completes it and brings more blocks, all decoded here.
 * NULL with no exception set means "the general path decides", with the state
 * as it was (or as a hook left it). */
static PyObject *
feed_events(CoreObject *self, Snapshot *snap, PyObject *data)
{
    const char *s = PyBytes_AS_STRING(data);
    Py_ssize_t n = PyBytes_GET_SIZE(data);
    const char *t = PyByteArray_AS_STRING(snap->tail);
    Py_ssize_t tn = snap->tn;
    if (tn > 0) {
        Py_ssize_t end = blank_line_end(s, n, t[tn - 1] == '\n');
        if (end < 0) { /* the unfinished event goes on: no Python code runs here */
            if (tn + event_size(s, n) > snap->max || memchr(s, '\r', (size_t)n) != NULL) {
                return NULL;
            }
            PyObject *previous = NULL;
            PyObject *empty = result_list(self, NULL, &previous);
            if (empty != NULL && append_tail(snap->tail, s, n) < 0) {
                Py_CLEAR(empty);
            }
            if (empty != NULL) {
                self->fast = 1;
            }
            Py_XDECREF(previous);
            return empty;
        }
        /* The unfinished event, completed by s[0:end], copied before any call into
         * Python: from here on the tail's buffer is never read again. */
        PyObject *first = join_buffer(self, tn + end);
        if (first == NULL) {
            return NULL;
        }
        memcpy(PyBytes_AS_STRING(first), t, (size_t)tn);
        memcpy(PyBytes_AS_STRING(first) + tn, s, (size_t)end);
        PyObject *chunks = NULL;
        Py_ssize_t first_stop = 0, stop = end;
        int ok = frame_decode(self, snap, first, tn + end, 0, &chunks, &first_stop);
        int taken = ok == 1 && first_stop == tn + end;
        if (taken) {
            ok = frame_decode(self, snap, data, n, end, &chunks, &stop);
        }
        if (ok < 0 || !taken || !unchanged(self, snap, PyBytes_AS_STRING(first))) {
            /* An error, the completed event is not for this path, or a hook changed
             * the decoder: the general path decides, from the state as it is. */
            Py_DECREF(first);
            Py_XDECREF(chunks);
            return NULL;
        }
        Py_DECREF(first);
        if (chunks == NULL && (chunks = PyList_New(0)) == NULL) {
            return NULL;
        }
        if (ok == 0 || event_size(s + stop, n - stop) > snap->max ||
            !tail_may_start(s + stop, n - stop)) {
            return hand_over(self, snap, s + stop, n - stop, tn + stop, chunks);
        }
        if (set_tail(snap->tail, s + stop, n - stop) < 0) {
            Py_DECREF(chunks);
            return NULL;
        }
        self->consumed += tn + stop;
        self->events += PyList_GET_SIZE(chunks);
        self->fast = 1;
        return chunks;
    }
    if (snap->consumed == 0 && snap->events == 0 && !tail_may_start(s, n)) {
        return NULL; /* the stream's start (blank lines, a BOM, a JSON body): the general path */
    }
    PyObject *chunks = NULL;
    Py_ssize_t stop = 0;
    int ok = frame_decode(self, snap, data, n, 0, &chunks, &stop);
    if (ok < 0 || !unchanged(self, snap, NULL)) {
        Py_XDECREF(chunks);
        return NULL;
    }
    if (ok == 0 || event_size(s + stop, n - stop) > snap->max ||
        !tail_may_start(s + stop, n - stop)) {
        if (chunks == NULL && stop == 0) {
            return NULL; /* nothing taken: the general path gets the read as it came */
        }
        if (chunks == NULL && (chunks = PyList_New(0)) == NULL) {
            return NULL;
        }
        return hand_over(self, snap, s + stop, n - stop, stop, chunks);
    }
    if (chunks == NULL && (chunks = PyList_New(0)) == NULL) {
        return NULL;
    }
    if (stop < n && set_tail(snap->tail, s + stop, n - stop) < 0) {
        Py_DECREF(chunks);
        return NULL;
    }
    self->consumed += stop;
    self->events += PyList_GET_SIZE(chunks);
    self->fast = 1;
    return chunks;
}

/* -- the usual reads, each in one pass over its bytes -------------------------------------- */

/* line_end() and has_error_key() in one pass, for a chunk type without
 * `error`: the offset of the first LF or CR in p[0:n] (n >= 38), or n, in
 * which case *key says whether '"error"' is in p[0:n]. Each step loads
 * p[i+2 .. i+34] and p[i+3 .. i+35], as has_error_key_avx2() does: the first
 * load is also searched for line endings; the bytes no load covers are
 * looked at one by one. */
#ifdef HAVE_AVX2_PROBE
__attribute__((target("avx2"))) static Py_ssize_t
line_end_key_avx2(const char *p, Py_ssize_t n, int *key)
{
    for (Py_ssize_t k = 0; k < 2; k++) {
        if (p[k] == '\n' || p[k] == '\r') {
            return k;
        }
    }
    const __m256i r = _mm256_set1_epi8('r');
    int found = 0;
    Py_ssize_t i = 0;
    /* Two steps at a time with one test while nothing is in sight; a pair of
     * steps with a candidate or a line ending goes through the steps below. */
    for (; i + 70 <= n; i += 64) {
        __m256i a0 = _mm256_loadu_si256((const __m256i *)(const void *)(p + i + 2));
        __m256i b0 = _mm256_loadu_si256((const __m256i *)(const void *)(p + i + 3));
        __m256i a1 = _mm256_loadu_si256((const __m256i *)(const void *)(p + i + 34));
        __m256i b1 = _mm256_loadu_si256((const __m256i *)(const void *)(p + i + 35));
        __m256i ends = _mm256_or_si256(line_ends_avx2(a0), line_ends_avx2(a1));
        __m256i pairs = _mm256_or_si256(
            _mm256_and_si256(_mm256_cmpeq_epi8(a0, r), _mm256_cmpeq_epi8(b0, r)),
            _mm256_and_si256(_mm256_cmpeq_epi8(a1, r), _mm256_cmpeq_epi8(b1, r)));
        __m256i any = found ? ends : _mm256_or_si256(ends, pairs);
        if (!_mm256_testz_si256(any, any)) {
            break;
        }
    }
    for (;;) {
        if (i + 38 > n) {
            i = n - 38;
        }
        __m256i a = _mm256_loadu_si256((const __m256i *)(const void *)(p + i + 2));
        __m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(p + i + 3));
        unsigned ends = (unsigned)_mm256_movemask_epi8(line_ends_avx2(a));
        if (ends != 0) {
            return i + 2 + __builtin_ctz(ends); /* the first: every byte before was looked at */
        }
        unsigned mask = found ? 0
                              : (unsigned)_mm256_movemask_epi8(_mm256_and_si256(
                                    _mm256_cmpeq_epi8(a, r), _mm256_cmpeq_epi8(b, r)));
        while (mask != 0) {
            if (memcmp(p + i + __builtin_ctz(mask), ERROR_KEY, ERROR_KEY_LEN) == 0) {
                found = 1;
                break;
            }
            mask &= mask - 1;
        }
        if (i + 38 >= n) {
            break;
        }
        i += 32;
    }
    for (Py_ssize_t k = n - 4; k < n; k++) { /* after the last load */
        if (p[k] == '\n' || p[k] == '\r') {
            return k;
        }
    }
    *key = found;
    return n;
}
#endif

/* Whether s[0:5] is "data:". */
static inline int
is_data_field(const char *s)
{
    uint32_t word;
    memcpy(&word, s, 4); /* one load */
    return memcmp(&word, "data", 4) == 0 && s[4] == ':';
}

/* Whether the payload p[0:pn] of a one-line data event goes to the general
 * path before any decoding: [DONE] (or an array), or, for a type that cannot
 * show it, one with an '"error"' key. */
static inline int
payload_refused(CoreObject *self, const char *p, Py_ssize_t pn, int key)
{
    Py_ssize_t j = pn > 0 && p[0] == ' ' ? 1 : 0; /* the usual "data: " */
    while (j < pn && (p[j] == ' ' || p[j] == '\t')) {
        j++;
    }
    return (j < pn && p[j] == '[') || (!self->has_error_field && key);
}

/* Whether p[0:pn] is one line (no LF or CR) whose payload may be decoded
 * here: payload_refused() with the key probe of the same pass. */
static int
one_line_payload(CoreObject *self, const char *p, Py_ssize_t pn)
{
    int key = 0;
#ifdef HAVE_AVX2_PROBE
    if (!self->has_error_field && use_avx2 && pn >= 38) {
        return line_end_key_avx2(p, pn, &key) == pn && !payload_refused(self, p, pn, key);
    }
#endif
    if (line_end(p, pn) != pn) {
        return 0;
    }
    if (!self->has_error_field) {
        key = has_error_key(p, pn);
    }
    return !payload_refused(self, p, pn, key);
}

#define QUICK_DONE 1     /* *out is feed()'s result */
#define QUICK_NONE 0     /* not such a read: nothing ran, nothing changed */
#define QUICK_GENERAL -1 /* the general path decides (_feed), from the state as it is */
#define QUICK_ERROR -2   /* an exception is set */

/* Decodes the one-line event payload p[0:pn], which lies in `owner`, in
 * place; then commits `used` bytes of the stream and an empty tail. The tail
 * held tn bytes, whose copy is at `tail_copy`: Python code (a hook of the
 * chunk type) may run during decoding, and nothing is committed if the
 * decoder is not as it was (its callable, tail, limits and counts), or if the
 * chunk is not for this path (it fails to decode, or reports an error). */
static int
quick_decode(CoreObject *self, PyObject *owner, const char *p, Py_ssize_t pn, Py_ssize_t used,
             const char *tail_copy, Py_ssize_t tn, PyObject *head, PyObject **out)
{
    ViewObject *view = self->view;
    if (view == NULL) {
        view = PyObject_New(ViewObject, &ViewType);
        if (view == NULL) {
            return QUICK_ERROR;
        }
        view->owner = NULL;
        view->exports = 0;
        self->view = view;
    }
    PyObject *decode = Py_NewRef(self->decode);
    PyObject *tail = Py_NewRef(self->tail);
    Py_ssize_t limit = self->shortcut_limit, max = self->max_event_size;
    long long consumed = self->consumed, events = self->events;
    char has_error_field = self->has_error_field;
    Py_INCREF(view); /* self->view may be replaced while msgspec reads it */
    view->owner = Py_NewRef(owner);
    view->buf = p;
    view->len = pn;
    PyObject *args[2] = {NULL, (PyObject *)view}; /* args[0]: room for a bound method's self */
    vectorcallfunc call = PyVectorcall_Function(decode);
    PyObject *chunk = call != NULL
                          ? call(decode, args + 1, 1 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL)
                          : PyObject_CallOneArg(decode, (PyObject *)view);
    if (Py_REFCNT(view) == 2 && view->exports == 0 && self->view == view) {
        Py_CLEAR(view->owner); /* nobody kept it: reused for the next payload */
    }
    else if (self->view == view) {
        Py_CLEAR(self->view); /* kept: it keeps its owner, the next payload gets a new one */
    }
    Py_DECREF(view);
    int status = QUICK_GENERAL;
    if (chunk != NULL && PyErr_Occurred()) {
        Py_CLEAR(chunk); /* a result with an exception set: a failure, as the call API says */
    }
    if (chunk == NULL) {
        status = hand_over_failure() < 0 ? QUICK_ERROR : QUICK_GENERAL;
    }
    else if (has_error_field && carries_error(self, chunk) != 0) {
        Py_CLEAR(chunk); /* an error chunk, or a failed truth test: the general path says */
        status = PyErr_Occurred() && hand_over_failure() < 0 ? QUICK_ERROR : QUICK_GENERAL;
    }
    else if (self->decode == decode && self->tail == tail && self->shortcut_limit == limit &&
             self->max_event_size == max && self->consumed == consumed &&
             self->events == events && self->has_error_field == has_error_field &&
             self->head == head && PyByteArray_GET_SIZE(tail) == tn &&
             (tn == 0 || memcmp(PyByteArray_AS_STRING(tail), tail_copy, (size_t)tn) == 0)) {
        PyObject *previous = NULL;
        PyObject *list = result_list(self, chunk, &previous);
        chunk = NULL; /* the list's, or released */
        if (list != NULL && tn > 0 && set_tail(tail, NULL, 0) < 0) {
            Py_CLEAR(list);
        }
        if (list == NULL) {
            status = QUICK_ERROR;
        }
        else {
            self->consumed += used;
            self->events += 1;
            self->fast = 1;
            Py_CLEAR(self->head); /* bytes: no code runs */
            *out = list;
            status = QUICK_DONE;
        }
        Py_XDECREF(previous); /* the decoder is consistent: a finalizer may run */
    }
    else {
        Py_CLEAR(chunk); /* a hook changed the decoder: the general path decides */
    }
    Py_DECREF(decode);
    Py_DECREF(tail);
    return status;
}

/* The reads of a live stream, each in one pass over its bytes: exactly one
 * data-only event at an event boundary,
 *
 *     data:<payload>\n\n
 *
 * the first line of an event, its LF still to come ("data:<payload start>"),
 * and the rest of an event whose first line began in the tail, ending with
 * its blank line ("<payload end>\n\n"). `data` is exact bytes and the decoder
 * is in fast mode with a valid tail. Anything else is QUICK_NONE, for
 * feed_events to frame. */
static int
feed_quick(CoreObject *self, PyObject *data, PyObject **out)
{
    const char *s = PyBytes_AS_STRING(data);
    Py_ssize_t n = PyBytes_GET_SIZE(data);
    PyObject *tail = self->tail;
    PyObject *head = self->head;
    Py_ssize_t tn = PyByteArray_GET_SIZE(tail);
    Py_ssize_t max = self->max_event_size;
    if (n >= 2 && s[n - 1] == '\n' && s[n - 2] == '\n') {
        if (tn == 0 && head == NULL) { /* one whole event */
            if (n < 8 || n - 2 > max || !is_data_field(s) || !one_line_payload(self, s + 5, n - 7)) {
                return QUICK_NONE;
            }
            return quick_decode(self, data, s + 5, n - 7, n, NULL, 0, NULL, out);
        }
        /* The rest of an event begun in the head (checked when it was kept, and
         * immutable) or in the tail: with s[0:n-2], its one line. */
        const char *t;
        if (head != NULL) {
            t = PyBytes_AS_STRING(head);
            tn = PyBytes_GET_SIZE(head);
        }
        else {
            t = PyByteArray_AS_STRING(tail);
            if (tn < 5 || !is_data_field(t) || line_end(t, tn) != tn) {
                return QUICK_NONE;
            }
        }
        if (tn + n - 2 > max || line_end(s, n - 2) != n - 2) {
            return QUICK_NONE;
        }
        PyObject *joined = join_buffer(self, tn + n);
        if (joined == NULL) {
            return QUICK_ERROR;
        }
        char *j = PyBytes_AS_STRING(joined);
        memcpy(j, t, (size_t)tn);
        memcpy(j + tn, s, (size_t)n);
        int status = QUICK_NONE;
        if (!payload_refused(self, j + 5, tn + n - 7,
                             !self->has_error_field && has_error_key(j + 5, tn + n - 7))) {
            Py_XINCREF(head); /* compared after decoding: the tail getter may settle it */
            status = head != NULL
                         ? quick_decode(self, joined, j + 5, tn + n - 7, tn + n, NULL, 0, head, out)
                         : quick_decode(self, joined, j + 5, tn + n - 7, tn + n, j, tn, NULL, out);
            Py_XDECREF(head);
        }
        Py_DECREF(joined);
        return status;
    }
    if (tn > 0 || head != NULL || n < 5 || n > max || !is_data_field(s) || line_end(s, n) != n) {
        return QUICK_NONE;
    }
    /* The first line of an event, still arriving: the read itself is kept (the
     * head), not copied. No Python code runs here. */
    PyObject *previous = NULL;
    PyObject *empty = result_list(self, NULL, &previous);
    if (empty != NULL) {
        self->head = Py_NewRef(data);
        self->fast = 1;
        *out = empty;
    }
    Py_XDECREF(previous); /* the decoder is consistent: a finalizer may run */
    return empty != NULL ? QUICK_DONE : QUICK_ERROR;
}

/* feed() itself, inside the re-entry guard. */
static PyObject *
feed_guarded(CoreObject *self, PyObject *data)
{
    if (self->shortcut_limit >= 0 && self->decode != NULL && self->tail != NULL &&
        PyByteArray_CheckExact(self->tail)) {
        PyObject *bytes = NULL;
        if (PyBytes_CheckExact(data)) {
            /* `data` is the caller's for the whole call: no reference is taken. */
            PyObject *out = NULL;
            int status = feed_quick(self, data, &out);
            if (status == QUICK_DONE) {
                return out;
            }
            if (settle_head(self) < 0 || status == QUICK_ERROR) {
                return NULL;
            }
            if (status == QUICK_GENERAL) {
                return PyObject_CallMethodOneArg((PyObject *)self, str_feed, data);
            }
            bytes = Py_NewRef(data);
        }
        else if (settle_head(self) < 0) {
            return NULL;
        }
        else if (PyByteArray_CheckExact(data) || PyMemoryView_Check(data)) {
            /* A copy, as bytes(data): a hook may rewrite a mutable read meanwhile. */
            bytes = PyBytes_FromObject(data);
            if (bytes == NULL) {
                PyErr_Clear(); /* the general path says what is wrong with it */
            }
        }
        /* A type with `error` needs no scan of the read first: the framing loop
         * finds CRs as it goes. For one without, the same scan looks for keys. */
        int key = 1;
        const char *b = bytes != NULL ? PyBytes_AS_STRING(bytes) : NULL;
        if (b != NULL &&
            (self->has_error_field || !read_has_cr(b, PyBytes_GET_SIZE(bytes), &key))) {
            Py_ssize_t tn = PyByteArray_GET_SIZE(self->tail);
            Snapshot snap = {
                .decode = Py_NewRef(self->decode),
                .call = PyVectorcall_Function(self->decode),
                .tail = Py_NewRef(self->tail),
                .tn = tn,
                .shortcut_limit = self->shortcut_limit,
                .max = self->max_event_size,
                .consumed = self->consumed,
                .events = self->events,
                .has_error_field = self->has_error_field,
                /* a key may also straddle the join with the unfinished event */
                .probe = !self->has_error_field && (key || tn > 0),
            };
            PyObject *out = feed_events(self, &snap, bytes);
            Py_DECREF(snap.decode);
            Py_DECREF(snap.tail);
            if (out != NULL || PyErr_Occurred()) {
                Py_DECREF(bytes);
                return out;
            }
        }
        Py_XDECREF(bytes);
    }
    return PyObject_CallMethodOneArg((PyObject *)self, str_feed, data);
}

/* -- metering: per-read readings of the clock, taken in the same call ------------------------ */

static PyObject *MeterChunk = NULL;  /* the default chunk type, metered by slots */
static PyObject *MeterLegacy = NULL; /* the legacy completions chunk type, metered by slots */
static PyObject *str_choices = NULL, *str_usage = NULL, *str_delta = NULL;
static PyObject *str_finish_reason = NULL, *str_content = NULL;

typedef struct {
    PyTypeObject *type; /* borrowed: kept alive by MeterChunk's field types */
    unsigned int tag;
    Py_ssize_t offset;
} SlotCache;

static SlotCache slot_choices, slot_usage, slot_delta, slot_finish, slot_content;
static SlotCache legacy_choices, legacy_usage, legacy_finish, legacy_text;
static PyObject *str_text = NULL;

/* obj.<name> read from its slot (borrowed), or NULL when that is not possible. */
static PyObject *
read_slot(PyObject *obj, PyObject *name, SlotCache *cache)
{
    PyTypeObject *type = Py_TYPE(obj);
    unsigned int tag = version_tag(type);
    if (type != cache->type || tag == 0 || tag != cache->tag) {
        cache->offset = member_slot(type, name);
        cache->type = type;
        cache->tag = version_tag(type);
    }
    if (cache->offset < 0) {
        return NULL;
    }
    return *(PyObject **)((char *)obj + cache->offset);
}

static long long
clock_reading(void)
{
#if PY_VERSION_HEX >= 0x030D0000
    PyTime_t t = 0;
    (void)PyTime_PerfCounterRaw(&t);
    return (long long)t;
#else
    return (long long)_PyTime_GetPerfCounter(); /* nanoseconds, as time.perf_counter_ns() */
#endif
}

/* A legacy text_completion chunk of one choice with text and nothing else to note:
 * the text's code points, or -1. */
static Py_ssize_t
legacy_chars(PyObject *chunk)
{
    PyObject *usage = read_slot(chunk, str_usage, &legacy_usage);
    PyObject *choices = read_slot(chunk, str_choices, &legacy_choices);
    if (usage == NULL || (usage != Py_None && usage != Unset) || choices == NULL ||
        !PyList_CheckExact(choices) || PyList_GET_SIZE(choices) != 1) {
        return -1;
    }
    PyObject *choice = PyList_GET_ITEM(choices, 0);
    PyObject *finish = read_slot(choice, str_finish_reason, &legacy_finish);
    PyObject *text = read_slot(choice, str_text, &legacy_text);
    if (finish == NULL || (finish != Py_None && finish != Unset) || text == NULL ||
        !PyUnicode_CheckExact(text) || PyUnicode_GET_LENGTH(text) == 0) {
        return -1;
    }
    return PyUnicode_GET_LENGTH(text);
}

/* A chunk that carries one token of text: its code points, or -1 for any other. */
static Py_ssize_t
token_chars(PyObject *chunk)
{
    if ((PyObject *)Py_TYPE(chunk) == MeterLegacy) {
        return legacy_chars(chunk);
    }
    if ((PyObject *)Py_TYPE(chunk) != MeterChunk) {
        return -1;
    }
    PyObject *usage = read_slot(chunk, str_usage, &slot_usage);
    PyObject *choices = read_slot(chunk, str_choices, &slot_choices);
    if (usage == NULL || (usage != Py_None && usage != Unset) || choices == NULL ||
        !PyList_CheckExact(choices) || PyList_GET_SIZE(choices) != 1) {
        return -1;
    }
    PyObject *choice = PyList_GET_ITEM(choices, 0);
    PyObject *finish = read_slot(choice, str_finish_reason, &slot_finish);
    PyObject *delta = read_slot(choice, str_delta, &slot_delta);
    if (finish == NULL || (finish != Py_None && finish != Unset) || delta == NULL) {
        return -1;
    }
    PyObject *content = read_slot(delta, str_content, &slot_content);
    if (content == NULL || !PyUnicode_CheckExact(content) || PyUnicode_GET_LENGTH(content) == 0) {
        return -1;
    }
    return PyUnicode_GET_LENGTH(content);
}

/* Keeps one token chunk's reading. */
static int
meter_push(CoreObject *self, long long reading)
{
    if (self->meter_count == self->meter_capacity) {
        Py_ssize_t capacity = self->meter_capacity < 256 ? 256 : self->meter_capacity * 2;
        long long *times = PyMem_Realloc(self->meter_times, (size_t)capacity * sizeof(long long));
        if (times == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        self->meter_times = times;
        self->meter_capacity = capacity;
    }
    self->meter_times[self->meter_count++] = reading;
    return 0;
}

/* Files the chunks of one feed() under its reading (`*stamp`: the reading as an
 * int, made when first needed). */
static int
meter_chunks(CoreObject *self, PyObject *chunks, long long reading, PyObject **stamp)
{
    PyObject *note = self->meter_note;
    if (note == NULL || !PyList_Check(chunks)) {
        return 0;
    }
    Py_INCREF(note);
    Py_INCREF(chunks); /* the note may be anything: keep what is iterated alive */
    int status = 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(chunks) && status == 0; i++) {
        PyObject *chunk = PyList_GET_ITEM(chunks, i);
        Py_ssize_t chars = token_chars(chunk);
        if (chars > 0) {
            self->metered_chars += chars;
            status = meter_push(self, reading);
        }
        else if (*stamp == NULL && (*stamp = PyLong_FromLongLong(reading)) == NULL) {
            status = -1;
        }
        else {
            Py_INCREF(chunk);
            PyObject *call[2] = {*stamp, chunk};
            PyObject *noted = PyObject_Vectorcall(note, call, 2, NULL);
            Py_DECREF(chunk);
            status = noted == NULL ? -1 : 0;
            Py_XDECREF(noted);
        }
    }
    Py_DECREF(chunks);
    Py_DECREF(note);
    return status;
}

/* Whether the decoder's `done` is set (an error counts as not). */
static int
decoder_done(CoreObject *self)
{
    PyObject *done = PyObject_GetAttr((PyObject *)self, str_done);
    int truth = done == NULL ? -1 : PyObject_IsTrue(done);
    Py_XDECREF(done);
    if (truth < 0) {
        PyErr_Clear();
        return 0;
    }
    return truth;
}

/* The reading of one feed(): the meter's clock, called (`*stamp` gets what it
 * returned), or perf_counter_ns's clock, read here. -1 with an exception set on failure. */
static int
meter_reading(CoreObject *self, long long *reading, PyObject **stamp)
{
    if (self->meter_clock == NULL) {
        *reading = clock_reading();
        return 0;
    }
    PyObject *clock = Py_NewRef(self->meter_clock);
    PyObject *value = PyObject_CallNoArgs(clock);
    Py_DECREF(clock);
    if (value == NULL) {
        return -1;
    }
    if (!PyLong_Check(value)) {
        PyErr_Format(PyExc_TypeError, "the meter's clock returned %.100s, not an int",
                     Py_TYPE(value)->tp_name);
        Py_DECREF(value);
        return -1;
    }
    *reading = PyLong_AsLongLong(value);
    if (*reading == -1 && PyErr_Occurred()) {
        Py_DECREF(value);
        return -1;
    }
    *stamp = value;
    return 0;
}

/* A feed() that raised: the note gets (reading, exception), then the exception is
 * raised on, so the meter sees the failure without a frame around feed(). */
static void
meter_failure(CoreObject *self, long long reading, PyObject *stamp)
{
    PyObject *note = self->meter_note;
    if (note == NULL || !PyErr_ExceptionMatches(PyExc_Exception)) {
        return;
    }
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL && value != NULL) {
        PyException_SetTraceback(value, tb);
    }
    Py_INCREF(note);
    PyObject *number = stamp != NULL ? Py_NewRef(stamp) : PyLong_FromLongLong(reading);
    PyObject *noted = NULL;
    if (number != NULL && value != NULL) {
        PyObject *call[2] = {number, value};
        noted = PyObject_Vectorcall(note, call, 2, NULL);
    }
    if (noted == NULL) {
        PyErr_Clear(); /* the feed's own error is the one to raise */
    }
    Py_XDECREF(noted);
    Py_XDECREF(number);
    Py_DECREF(note);
    PyErr_Restore(type, value, tb);
}

/* feed() with the meter on: one reading, taken as the read arrives. A read the
 * fast mode decided cannot have seen [DONE] (it hands that to the general
 * path), so `done` is only read after the others. */
static PyObject *
feed_metered(CoreObject *self, PyObject *data)
{
    long long reading = 0;
    PyObject *stamp = NULL;
    if (meter_reading(self, &reading, &stamp) < 0) {
        return NULL;
    }
    PyObject *out = feed_guarded(self, data);
    if (out == NULL) {
        meter_failure(self, reading, stamp);
        Py_XDECREF(stamp);
        return NULL;
    }
    if (!self->fast && !self->meter_done && decoder_done(self)) {
        self->meter_done = 1;
        self->done_ns = reading;
    }
    if (PyList_GET_SIZE(out) > 0 && meter_chunks(self, out, reading, &stamp) < 0) {
        Py_XDECREF(stamp);
        Py_DECREF(out);
        return NULL;
    }
    Py_XDECREF(stamp);
    return out;
}

static PyObject *
Core_set_meter(CoreObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *note = nargs >= 1 ? args[0] : NULL;
    PyObject *clock = nargs == 2 ? args[1] : Py_None;
    if (nargs < 1 || nargs > 2 || (note != Py_None && !PyCallable_Check(note)) ||
        (clock != Py_None && !PyCallable_Check(clock))) {
        PyErr_SetString(PyExc_TypeError, "set_meter(note, clock=None), or set_meter(None)");
        return NULL;
    }
    if (note != Py_None && MeterChunk == NULL) {
        PyObject *module = PyImport_ImportModule("streamspec.types.stream");
        PyObject *legacy = PyImport_ImportModule("streamspec.types.completions");
        PyObject *chat = module == NULL ? NULL
                         : PyObject_GetAttrString(module, "CreateChatCompletionStreamResponse");
        PyObject *text = legacy == NULL ? NULL
                         : PyObject_GetAttrString(legacy, "CreateCompletionResponse");
        Py_XDECREF(module);
        Py_XDECREF(legacy);
        if (str_text == NULL) {
            str_text = PyUnicode_InternFromString("text");
        }
        if (chat == NULL || text == NULL || str_text == NULL) {
            Py_XDECREF(chat);
            Py_XDECREF(text);
            return NULL;
        }
        MeterLegacy = text;
        MeterChunk = chat;
    }
    int on = note != Py_None;
    Py_XSETREF(self->meter_note, on ? Py_NewRef(note) : NULL);
    Py_XSETREF(self->meter_clock, on && clock != Py_None ? Py_NewRef(clock) : NULL);
    PyMem_Free(self->meter_times);
    self->meter_times = NULL;
    self->meter_count = self->meter_capacity = 0;
    self->metered_chars = 0;
    self->done_ns = 0;
    self->meter_done = on && decoder_done(self);
    Py_RETURN_NONE;
}

/* The metered token readings, as a list of ints. */
static PyObject *
Core_meter_times(CoreObject *self, PyObject *unused)
{
    PyObject *list = PyList_New(self->meter_count);
    for (Py_ssize_t i = 0; list != NULL && i < self->meter_count; i++) {
        PyObject *value = PyLong_FromLongLong(self->meter_times[i]);
        if (value == NULL) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, i, value);
    }
    return list;
}

/* Sorts n non-negative values in place, least significant byte first; `scratch`
 * holds n values. Passes where every value has the same byte are skipped. */
static void
radix_sort(unsigned long long *values, unsigned long long *scratch, Py_ssize_t n)
{
    unsigned long long *from = values, *to = scratch;
    for (int shift = 0; shift < 64; shift += 8) {
        Py_ssize_t counts[257] = {0};
        for (Py_ssize_t i = 0; i < n; i++) {
            counts[((from[i] >> shift) & 0xFF) + 1]++;
        }
        if (counts[((from[0] >> shift) & 0xFF) + 1] == n) {
            continue; /* one bucket: this byte orders nothing */
        }
        for (int b = 0; b < 256; b++) {
            counts[b + 1] += counts[b];
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            to[counts[(from[i] >> shift) & 0xFF]++] = from[i];
        }
        unsigned long long *swap = from;
        from = to;
        to = swap;
    }
    if (from != values) {
        memcpy(values, from, (size_t)n * sizeof(unsigned long long));
    }
}

static int
compare_readings(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

/* meter_itl(late, ranks) -> (first, last, squares, values): the token readings
 * (the metered ones and `late`, merged in order) summed up for the ITL: the
 * first and last reading, the exact sum of the squared gaps, and the gaps at
 * the given ranks of their ascending order. None when no token was seen. */
static PyObject *
Core_meter_itl(CoreObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyList_CheckExact(args[0]) || !PyTuple_CheckExact(args[1])) {
        PyErr_SetString(PyExc_TypeError, "meter_itl(late: list, ranks: tuple)");
        return NULL;
    }
    PyObject *late = args[0], *ranks = args[1];
    Py_ssize_t extra = PyList_GET_SIZE(late), n = self->meter_count + extra;
    if (n == 0) {
        Py_RETURN_NONE;
    }
    long long *stamps = PyMem_Malloc((size_t)n * 2 * sizeof(long long));
    if (stamps == NULL) {
        return PyErr_NoMemory();
    }
    if (self->meter_count > 0) {
        memcpy(stamps, self->meter_times, (size_t)self->meter_count * sizeof(long long));
    }
    for (Py_ssize_t i = 0; i < extra; i++) {
        long long value = PyLong_AsLongLong(PyList_GET_ITEM(late, i));
        if (value == -1 && PyErr_Occurred()) {
            PyMem_Free(stamps);
            return NULL;
        }
        stamps[self->meter_count + i] = value;
    }
    if (extra > 0) {
        qsort(stamps, (size_t)n, sizeof(long long), compare_readings);
    }
    Py_ssize_t count = n - 1;
    unsigned long long *gaps = (unsigned long long *)(stamps + n);
    int ordered = 1;
    for (Py_ssize_t i = 0; i < count; i++) {
        if (stamps[i + 1] < stamps[i]) {
            ordered = 0; /* a clock that went back: the gaps are left to the caller */
        }
        gaps[i] = (unsigned long long)stamps[i + 1] - (unsigned long long)stamps[i];
    }
    PyObject *result = NULL, *squares = NULL, *values = NULL;
    if (!ordered) {
        PyMem_Free(stamps);
        Py_RETURN_NONE;
    }
    /* The exact sum of squares, in 32-bit halves: hi * 2**64 + lo. */
    unsigned long long lo = 0, hi = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        unsigned long long g = gaps[i], a = g >> 32, b = g & 0xFFFFFFFFULL;
        unsigned long long cross = a * b, low = b * b, old;
        hi += a * a + (cross >> 31);
        unsigned long long mid = cross << 33;
        old = lo;
        lo += mid;
        hi += lo < old;
        old = lo;
        lo += low;
        hi += lo < old;
    }
    if (count > 0) {
        unsigned long long *scratch = PyMem_Malloc((size_t)count * sizeof(unsigned long long));
        if (scratch == NULL) {
            PyMem_Free(stamps);
            return PyErr_NoMemory();
        }
        radix_sort(gaps, scratch, count);
        PyMem_Free(scratch);
    }
    PyObject *high = PyLong_FromUnsignedLongLong(hi);
    PyObject *low = PyLong_FromUnsignedLongLong(lo);
    PyObject *shift = PyLong_FromLong(64);
    PyObject *top = high == NULL || shift == NULL ? NULL : PyNumber_Lshift(high, shift);
    squares = top == NULL || low == NULL ? NULL : PyNumber_Add(top, low);
    Py_XDECREF(high);
    Py_XDECREF(low);
    Py_XDECREF(shift);
    Py_XDECREF(top);
    Py_ssize_t k = PyTuple_GET_SIZE(ranks);
    values = squares == NULL ? NULL : PyTuple_New(k);
    for (Py_ssize_t i = 0; values != NULL && i < k; i++) {
        Py_ssize_t rank = PyLong_AsSsize_t(PyTuple_GET_ITEM(ranks, i));
        if (rank == -1 && PyErr_Occurred()) {
            Py_CLEAR(values);
            break;
        }
        if (rank < 0 || rank >= count) {
            PyErr_SetString(PyExc_IndexError, "meter_itl: rank out of range");
            Py_CLEAR(values);
            break;
        }
        PyObject *value = PyLong_FromUnsignedLongLong(gaps[rank]);
        if (value == NULL) {
            Py_CLEAR(values);
            break;
        }
        PyTuple_SET_ITEM(values, i, value);
    }
    if (values != NULL) {
        result = Py_BuildValue("(LLOO)", stamps[0], stamps[n - 1], squares, values);
    }
    Py_XDECREF(squares);
    Py_XDECREF(values);
    PyMem_Free(stamps);
    return result;
}

static PyObject *
Core_feed(CoreObject *self, PyObject *data)
{
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError,
                        "ChunkDecoder.feed() re-entered: called while a feed() of the same "
                        "decoder is running (from a hook of the chunk type, such as "
                        "__post_init__, or from another thread)");
        return NULL;
    }
    self->busy = 1;
    self->fast = 0;
    PyObject *out = self->meter_note != NULL ? feed_metered(self, data) : feed_guarded(self, data);
    self->busy = 0;
    return out;
}

static PyMethodDef Core_methods[] = {
    {"feed", (PyCFunction)Core_feed, METH_O,
     "feed(data) -> list: decode the next bytes of the stream."},
    {"set_meter", (PyCFunction)(void (*)(void))Core_set_meter, METH_FASTCALL,
     "set_meter(note, clock=None): stamp each feed()'s chunks with one reading of\n"
     "`clock` (default: time.perf_counter_ns()'s clock, read in C), taken as the\n"
     "read arrives: a token chunk's reading is kept here (`metered_tokens`,\n"
     "meter_times(), meter_itl(); its text's code points go to `metered_chars`),\n"
     "note(reading, chunk) is called for any other chunk (an exception it raises\n"
     "is feed()'s), and note(reading, exception) for a feed() that raises;\n"
     "`done_ns` gets the reading of the feed() that saw [DONE]. set_meter(None)\n"
     "turns it off. Each call starts the counts afresh."},
    {"meter_times", (PyCFunction)Core_meter_times, METH_NOARGS,
     "meter_times() -> list[int]: the readings of the metered token chunks."},
    {"meter_itl", (PyCFunction)(void (*)(void))Core_meter_itl, METH_FASTCALL,
     "meter_itl(late, ranks) -> (first, last, squares, values) | None: the metered\n"
     "token readings and `late` merged; the sum of the squared gaps and the gaps at\n"
     "`ranks` of their ascending order. None without readings (or if the clock\n"
     "went back)."},
    {NULL, NULL, 0, NULL},
};

static PyObject *
Core_get_decode(CoreObject *self, void *closure)
{
    if (self->decode == NULL) {
        PyErr_SetString(PyExc_AttributeError, "_decode");
        return NULL;
    }
    return Py_NewRef(self->decode);
}

static int
Core_set_decode(CoreObject *self, PyObject *value, void *closure)
{
    if (value == NULL || !PyCallable_Check(value)) {
        PyErr_SetString(PyExc_TypeError, "ChunkDecoder._decode must be a callable");
        return -1;
    }
    Py_INCREF(value);
    Py_XSETREF(self->decode, value);
    return 0;
}

static PyObject *
Core_get_tail(CoreObject *self, void *closure)
{
    if (self->tail == NULL) {
        PyErr_SetString(PyExc_AttributeError, "_tail");
        return NULL;
    }
    if (settle_head(self) < 0) { /* what Python code sees is the whole unfinished event */
        return NULL;
    }
    return Py_NewRef(self->tail);
}

static int
Core_set_tail(CoreObject *self, PyObject *value, void *closure)
{
    if (value == NULL || !PyByteArray_CheckExact(value)) {
        PyErr_Format(PyExc_TypeError, "ChunkDecoder._tail must be a bytearray, not %.100s",
                     value == NULL ? "deleted" : Py_TYPE(value)->tp_name);
        return -1;
    }
    Py_INCREF(value);
    Py_XSETREF(self->tail, value);
    Py_CLEAR(self->head); /* the new tail is the whole unfinished event */
    return 0;
}

static PyGetSetDef Core_getset[] = {
    {"_decode", (getter)Core_get_decode, (setter)Core_set_decode, NULL, NULL},
    {"_tail", (getter)Core_get_tail, (setter)Core_set_tail, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef Core_members[] = {
    {"_error_of", T_OBJECT_EX, offsetof(CoreObject, error_of), 0, NULL},
    {"_shortcut_limit", T_PYSSIZET, offsetof(CoreObject, shortcut_limit), 0, NULL},
    {"max_event_size", T_PYSSIZET, offsetof(CoreObject, max_event_size), 0, NULL},
    {"_consumed", T_LONGLONG, offsetof(CoreObject, consumed), 0, NULL},
    {"_events", T_LONGLONG, offsetof(CoreObject, events), 0, NULL},
    {"_has_error_field", T_BOOL, offsetof(CoreObject, has_error_field), 0, NULL},
    {"metered_chars", T_LONGLONG, offsetof(CoreObject, metered_chars), 0, NULL},
    {"metered_tokens", T_PYSSIZET, offsetof(CoreObject, meter_count), READONLY, NULL},
    {"done_ns", T_LONGLONG, offsetof(CoreObject, done_ns), 0, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject CoreType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "streamspec._speedups.DecoderCore",
    .tp_basicsize = sizeof(CoreObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "State and feed() shortcut of ChunkDecoder.",
    .tp_new = Core_new,
    .tp_dealloc = (destructor)Core_dealloc,
    .tp_traverse = (traverseproc)Core_traverse,
    .tp_clear = (inquiry)Core_clear,
    .tp_methods = Core_methods,
    .tp_members = Core_members,
    .tp_getset = Core_getset,
};
/* ChunkIterator(decoder, source, error_type): what streamspec.iterate() returns
 * with the accelerator, the same as this generator without a frame per chunk:
 *
 *     try:
 *         for data in source:
 *             yield from decoder.feed(data)
 *             if decoder.done:
 *                 break
 *         yield from decoder.close()
 *     except error_type as exc:
 *         yield from exc.chunks
 *         raise
 */
enum { ITER_FEEDING, ITER_CLOSING, ITER_FINISHED };

typedef struct {
    PyObject_HEAD
    PyObject *decoder;
    PyObject *source;     /* the iterable, then its iterator */
    PyObject *error_type; /* streamspec.Error */
    PyObject *items;      /* the list being yielded, or NULL */
    Py_ssize_t index;
    PyObject *exc_type, *exc_value, *exc_tb; /* raised once items are yielded */
    int state;
    int started;
    int direct; /* the decoder's feed() is DecoderCore.feed: called directly */
    int running; /* inside next(), as a generator's gi_running */
} IterObject;

static PyObject *str_close = NULL;  /* "close" */
static PyObject *str_chunks = NULL; /* "chunks" */

static int
Iter_traverse(IterObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->decoder);
    Py_VISIT(self->source);
    Py_VISIT(self->error_type);
    Py_VISIT(self->items);
    Py_VISIT(self->exc_type);
    Py_VISIT(self->exc_value);
    Py_VISIT(self->exc_tb);
    return 0;
}

static int
Iter_clear(IterObject *self)
{
    Py_CLEAR(self->decoder);
    Py_CLEAR(self->source);
    Py_CLEAR(self->error_type);
    Py_CLEAR(self->items);
    Py_CLEAR(self->exc_type);
    Py_CLEAR(self->exc_value);
    Py_CLEAR(self->exc_tb);
    return 0;
}

static void
Iter_dealloc(IterObject *self)
{
    PyObject_GC_UnTrack(self);
    Iter_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
Iter_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PyObject *decoder, *source, *error_type;
    if (!PyArg_ParseTuple(args, "OOO:ChunkIterator", &decoder, &source, &error_type)) {
        return NULL;
    }
    if (!PyType_Check(error_type) ||
        !PyType_IsSubtype((PyTypeObject *)error_type, (PyTypeObject *)PyExc_BaseException)) {
        PyErr_SetString(PyExc_TypeError, "ChunkIterator: error_type must be an exception class");
        return NULL;
    }
    IterObject *self = (IterObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->decoder = Py_NewRef(decoder);
    self->source = Py_NewRef(source);
    self->error_type = Py_NewRef(error_type);
    self->state = ITER_FEEDING;
    if (PyObject_TypeCheck(decoder, &CoreType)) {
        /* DecoderCore's feed(), through its descriptor or one of bind_methods() */
        PyObject *found = _PyType_Lookup(Py_TYPE(decoder), str_feed_public); /* borrowed */
        self->direct = found != NULL && Py_IS_TYPE(found, &PyMethodDescr_Type) &&
                       ((PyMethodDescrObject *)found)->d_method->ml_meth == (PyCFunction)Core_feed;
    }
    return (PyObject *)self;
}

/* Takes the list `out` (a new reference) as the items to yield next. */
static int
take_items(IterObject *self, PyObject *out)
{
    if (!PyList_CheckExact(out)) {
        PyObject *list = PySequence_List(out);
        Py_DECREF(out);
        if (list == NULL) {
            return -1;
        }
        out = list;
    }
    Py_XSETREF(self->items, out);
    self->index = 0;
    return 0;
}

/* After a failed call: a streamspec error is kept to be raised once its
 * chunks are yielded (0); anything else goes through at once (-1). */
static int
catch_error(IterObject *self)
{
    self->state = ITER_FINISHED;
    Py_CLEAR(self->source);
    if (!PyErr_ExceptionMatches(self->error_type)) {
        return -1;
    }
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL && value != NULL) {
        PyException_SetTraceback(value, tb);
    }
    PyObject *chunks = value == NULL ? NULL : PyObject_GetAttr(value, str_chunks);
    if (chunks == NULL || take_items(self, chunks) < 0) {
        PyErr_Clear(); /* no chunks to give: raise the error itself */
        Py_CLEAR(self->items);
    }
    self->exc_type = type;
    self->exc_value = value;
    self->exc_tb = tb;
    return 0;
}

static PyObject *iter_step(IterObject *self);

static PyObject *
Iter_next(IterObject *self)
{
    if (self->running) {
        PyErr_SetString(PyExc_ValueError, "ChunkIterator already executing");
        return NULL;
    }
    self->running = 1;
    PyObject *decoder = Py_NewRef(self->decoder); /* alive whatever the calls below do */
    PyObject *out = iter_step(self);
    Py_DECREF(decoder);
    self->running = 0;
    return out;
}

static PyObject *
iter_step(IterObject *self)
{
    for (;;) {
        if (self->items != NULL) {
            if (self->index < PyList_GET_SIZE(self->items)) {
                return Py_NewRef(PyList_GET_ITEM(self->items, self->index++));
            }
            Py_CLEAR(self->items);
        }
        if (self->exc_type != NULL) {
            PyErr_Restore(self->exc_type, self->exc_value, self->exc_tb);
            self->exc_type = self->exc_value = self->exc_tb = NULL;
            return NULL;
        }
        if (self->state == ITER_FINISHED) {
            return NULL;
        }
        PyObject *out;
        if (self->state == ITER_FEEDING) {
            if (!self->started) {
                self->started = 1;
                PyObject *it = PyObject_GetIter(self->source);
                if (it == NULL) {
                    if (catch_error(self) < 0) {
                        return NULL;
                    }
                    continue;
                }
                Py_SETREF(self->source, it);
            }
            if (self->source == NULL) {
                self->state = ITER_CLOSING;
                continue;
            }
            PyObject *source = Py_NewRef(self->source);
            PyObject *data = PyIter_Next(source);
            Py_DECREF(source);
            if (data == NULL) {
                if (PyErr_Occurred()) {
                    if (catch_error(self) < 0) {
                        return NULL;
                    }
                    continue;
                }
                self->state = ITER_CLOSING;
                Py_CLEAR(self->source);
                continue;
            }
            int fast = 0;
            if (self->direct) {
                CoreObject *core = (CoreObject *)self->decoder;
                out = Core_feed(core, data);
                fast = out != NULL && core->fast; /* no Python code could set `done` */
            }
            else {
                out = PyObject_CallMethodOneArg(self->decoder, str_feed_public, data);
            }
            Py_DECREF(data);
            if (out == NULL) {
                if (catch_error(self) < 0) {
                    return NULL;
                }
                continue;
            }
            if (take_items(self, out) < 0) {
                if (catch_error(self) < 0) {
                    return NULL;
                }
                continue;
            }
            if (fast) {
                continue;
            }
            PyObject *done = PyObject_GetAttr(self->decoder, str_done);
            int truth = done == NULL ? -1 : PyObject_IsTrue(done);
            Py_XDECREF(done);
            if (truth < 0) {
                if (catch_error(self) < 0) {
                    return NULL;
                }
                continue;
            }
            if (truth) {
                self->state = ITER_CLOSING;
                Py_CLEAR(self->source);
            }
            continue;
        }
        /* ITER_CLOSING */
        self->state = ITER_FINISHED;
        out = PyObject_CallMethodNoArgs(self->decoder, str_close);
        if (out == NULL || take_items(self, out) < 0) {
            if (catch_error(self) < 0) {
                return NULL;
            }
        }
    }
}

static PyObject *
Iter_close(IterObject *self, PyObject *unused)
{
    if (self->running) {
        PyErr_SetString(PyExc_ValueError, "ChunkIterator already executing");
        return NULL;
    }
    self->state = ITER_FINISHED;
    Py_CLEAR(self->source);
    Py_CLEAR(self->items);
    Py_CLEAR(self->exc_type);
    Py_CLEAR(self->exc_value);
    Py_CLEAR(self->exc_tb);
    Py_RETURN_NONE;
}

static PyMethodDef Iter_methods[] = {
    {"close", (PyCFunction)Iter_close, METH_NOARGS,
     "close(): stop; later next() calls raise StopIteration."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject IterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "streamspec._speedups.ChunkIterator",
    .tp_basicsize = sizeof(IterObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "ChunkIterator(decoder, source, error_type): the chunks of `source` fed to `decoder`.",
    .tp_new = Iter_new,
    .tp_dealloc = (destructor)Iter_dealloc,
    .tp_traverse = (traverseproc)Iter_traverse,
    .tp_clear = (inquiry)Iter_clear,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)Iter_next,
    .tp_methods = Iter_methods,
};

/* split_events(data, start, head=b"") -> (payloads, stop) or None
 *
 * Reads head + data[start:] as consecutive "data:<payload>\n\n" events, where
 * head is the beginning of an event whose end is in data. Returns the payloads
 * (each without "data:" and the LFs) and where in data the complete events
 * stop: what follows is an event still arriving. Returns None as soon as a
 * line is anything else (a comment, another field, a second data line, a
 * blank line too many): the caller hands the bytes to the SSE parser. The
 * caller has checked that neither holds a CR. */
static PyObject *
split_events(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 2 || nargs > 3 || !PyBytes_Check(args[0]) ||
        (nargs == 3 && !PyBytes_Check(args[2]))) {
        PyErr_SetString(PyExc_TypeError,
                        "split_events(data: bytes, start: int, head: bytes = b'')");
        return NULL;
    }
    Py_ssize_t start = PyLong_AsSsize_t(args[1]);
    if (start == -1 && PyErr_Occurred()) {
        return NULL;
    }
    const char *s = PyBytes_AS_STRING(args[0]);
    Py_ssize_t n = PyBytes_GET_SIZE(args[0]);
    if (start < 0 || start > n) {
        PyErr_SetString(PyExc_ValueError, "start out of range");
        return NULL;
    }
    PyObject *payloads = PyList_New(0);
    if (payloads == NULL) {
        return NULL;
    }
    Py_ssize_t stop = start;
    int found = 1;
    if (nargs == 3 && PyBytes_GET_SIZE(args[2]) > 0) {
        /* The event that head begins ends at the first blank line, which may
         * straddle the join; head itself holds no blank line. */
        const char *h = PyBytes_AS_STRING(args[2]);
        Py_ssize_t hn = PyBytes_GET_SIZE(args[2]);
        Py_ssize_t end = -1;
        if (h[hn - 1] == '\n' && start < n && s[start] == '\n') {
            end = start + 1;
        }
        else {
            for (Py_ssize_t i = start; i + 1 < n; i++) {
                const char *newline = memchr(s + i, '\n', (size_t)(n - 1 - i));
                if (newline == NULL) {
                    break;
                }
                i = newline - s;
                if (s[i + 1] == '\n') {
                    end = i + 2;
                    break;
                }
            }
        }
        if (end < 0) {
            found = 0; /* not complete yet: the caller only asks once it is */
        }
        else {
            PyObject *first = PyBytes_FromStringAndSize(NULL, hn + end - start);
            if (first == NULL) {
                Py_DECREF(payloads);
                return NULL;
            }
            memcpy(PyBytes_AS_STRING(first), h, (size_t)hn);
            memcpy(PyBytes_AS_STRING(first) + hn, s + start, (size_t)(end - start));
            Py_ssize_t first_stop = 0;
            found = frame_payloads(PyBytes_AS_STRING(first), PyBytes_GET_SIZE(first), 0, payloads,
                          &first_stop);
            if (found == 1 && first_stop != PyBytes_GET_SIZE(first)) {
                found = 0;
            }
            Py_DECREF(first);
            stop = end;
        }
    }
    if (found == 1) {
        found = frame_payloads(s, n, stop, payloads, &stop);
    }
    if (found != 1) {
        Py_DECREF(payloads);
        if (found < 0) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    return Py_BuildValue("(Nn)", payloads, stop);
}

/* bind_methods(cls): gives a subclass of DecoderCore descriptors of its own
 * for the core's methods it inherits as they are (one it, or a class between,
 * defines in Python is left alone). CPython specializes the call of a C
 * method only for an instance of the very type its descriptor belongs to
 * (3.11 to 3.13 check Py_IS_TYPE(self, d_type)), so with the descriptors
 * DecoderCore's own, every feed() of a ChunkDecoder took the generic call
 * path: about 12 ns a call, 3% of a chunk's decoding. The function behind the
 * new descriptor is the same; its type check (self is an instance of cls, a
 * subclass of DecoderCore) still guards it. */
static PyObject *
bind_methods(PyObject *module, PyObject *cls)
{
    (void)module;
    if (!PyType_Check(cls) || !PyType_IsSubtype((PyTypeObject *)cls, &CoreType)) {
        PyErr_SetString(PyExc_TypeError, "bind_methods(cls): cls must subclass DecoderCore");
        return NULL;
    }
    for (PyMethodDef *def = Core_methods; def->ml_name != NULL; def++) {
        PyObject *name = PyUnicode_InternFromString(def->ml_name);
        if (name == NULL) {
            return NULL;
        }
        PyObject *found = _PyType_Lookup((PyTypeObject *)cls, name); /* borrowed; no code runs */
        int inherited = found != NULL && Py_IS_TYPE(found, &PyMethodDescr_Type) &&
                        ((PyMethodDescrObject *)found)->d_method == def &&
                        ((PyMethodDescrObject *)found)->d_common.d_type != (PyTypeObject *)cls;
        PyObject *descr = inherited ? PyDescr_NewMethod((PyTypeObject *)cls, def) : NULL;
        int failed = inherited && (descr == NULL || PyObject_SetAttr(cls, name, descr) < 0);
        Py_XDECREF(descr);
        Py_DECREF(name);
        if (failed) {
            return NULL;
        }
    }
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"bind_methods", (PyCFunction)bind_methods, METH_O,
     "bind_methods(cls): cls's own descriptors of the DecoderCore methods it\n"
     "inherits unchanged, so that CPython specializes their calls on cls's instances."},
    {"split_events", (PyCFunction)(void (*)(void))split_events, METH_FASTCALL,
     "split_events(data, start, head=b'') -> (payloads, stop) | None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "streamspec._speedups",
    .m_doc = "Compiled fast paths of streamspec's ChunkDecoder.",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
#ifdef HAVE_AVX2_PROBE
    __builtin_cpu_init();
    use_avx2 = __builtin_cpu_supports("avx2");
#endif
    PyObject *msgspec = PyImport_ImportModule("msgspec");
    if (msgspec == NULL) {
        return NULL;
    }
    DecodeError = PyObject_GetAttrString(msgspec, "DecodeError");
    Unset = PyObject_GetAttrString(msgspec, "UNSET");
    Py_DECREF(msgspec);
    if (DecodeError == NULL || Unset == NULL) {
        return NULL;
    }
    str_error = PyUnicode_InternFromString("error");
    str_feed = PyUnicode_InternFromString("_feed");
    str_continue = PyUnicode_InternFromString("_continue");
    str_feed_public = PyUnicode_InternFromString("feed");
    str_choices = PyUnicode_InternFromString("choices");
    str_usage = PyUnicode_InternFromString("usage");
    str_delta = PyUnicode_InternFromString("delta");
    str_finish_reason = PyUnicode_InternFromString("finish_reason");
    str_content = PyUnicode_InternFromString("content");
    if (str_choices == NULL || str_usage == NULL || str_delta == NULL || str_finish_reason == NULL ||
        str_content == NULL) {
        return NULL;
    }
    str_done = PyUnicode_InternFromString("done");
    str_close = PyUnicode_InternFromString("close");
    str_chunks = PyUnicode_InternFromString("chunks");
    if (str_error == NULL || str_feed == NULL || str_continue == NULL || str_feed_public == NULL ||
        str_done == NULL || str_close == NULL || str_chunks == NULL) {
        return NULL;
    }
    if (PyType_Ready(&ViewType) < 0 || PyType_Ready(&CoreType) < 0 ||
        PyType_Ready(&IterType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL) {
        return NULL;
    }
    Py_INCREF(&CoreType);
    if (PyModule_AddObject(module, "DecoderCore", (PyObject *)&CoreType) < 0) {
        Py_DECREF(&CoreType);
        Py_DECREF(module);
        return NULL;
    }
    Py_INCREF(&IterType);
    if (PyModule_AddObject(module, "ChunkIterator", (PyObject *)&IterType) < 0) {
        Py_DECREF(&IterType);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
