/*
 * Compiled fast paths of streamspec's ChunkDecoder (optional: decoder.py has
 * the same logic in Python and uses it when this module is not built).
 *
 * Both recognise only runs of data-only events,
 *
 *     data:<payload>\n\n
 *
 * with no CR anywhere and no LF inside a payload; everything else is left to
 * the Python general path, which runs the WHATWG algorithm. The payload keeps
 * the optional space after "data:"; msgspec skips it as JSON whitespace.
 *
 * - DecoderCore: the base class of ChunkDecoder. In fast mode its feed()
 *   decodes any read without CR whose events are data-only (and the
 *   unfinished event they complete) without entering the interpreter. At the
 *   first event it cannot take ([DONE], another kind of line, a payload for
 *   the careful path) it keeps what it decoded and hands the rest of the read
 *   to the subclass's _continue(); a read it cannot start goes, with nothing
 *   changed, to _feed().
 * - split_events(data, start, head): cuts a buffer into payloads at C speed.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <string.h>

static PyObject *DecodeError = NULL;  /* msgspec.DecodeError */
static PyObject *Unset = NULL;        /* msgspec.UNSET */
static PyObject *str_error = NULL;    /* "error" */
static PyObject *str_feed = NULL;     /* "_feed" */
static PyObject *str_continue = NULL; /* "_continue" */

/* memmem is a GNU extension: a small portable search for the '"error"' probe. */
static int
contains(const char *haystack, Py_ssize_t n, const char *needle, Py_ssize_t m)
{
    const char *end = haystack + n - m;
    const char *p = haystack;
    while (p <= end) {
        p = memchr(p, needle[0], (size_t)(end - p + 1));
        if (p == NULL) {
            return 0;
        }
        if (memcmp(p, needle, (size_t)m) == 0) {
            return 1;
        }
        p++;
    }
    return 0;
}

typedef struct {
    PyObject_HEAD
    PyObject *decode;          /* msgspec Decoder.decode, bound */
    PyObject *error_of;        /* chunk -> truthy when it carries an error */
    PyObject *tail;            /* bytearray: the unfinished event (fast mode) */
    Py_ssize_t shortcut_limit; /* >= 0: fast mode on; -1: off (the Python twin also
                                  * uses it as the largest one-event read) */
    Py_ssize_t max_event_size;
    long long consumed;        /* stream offset where the unfinished event starts */
    long long events;          /* data events seen */
    char has_error_field;      /* the chunk type declares `error` */
    PyObject *error_owner;     /* the chunk type whose `error` slot offset is cached */
    Py_ssize_t error_offset;   /* that offset, read directly instead of getattr */
} CoreObject;

static int
Core_traverse(CoreObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->decode);
    Py_VISIT(self->error_of);
    Py_VISIT(self->tail);
    Py_VISIT(self->error_owner);
    return 0;
}

static int
Core_clear(CoreObject *self)
{
    Py_CLEAR(self->decode);
    Py_CLEAR(self->error_of);
    Py_CLEAR(self->tail);
    Py_CLEAR(self->error_owner);
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

/* Whether the chunk's `error` field is set (truthy): 1, 0, or -1 on error.
 * msgspec stores Struct fields in slots behind member descriptors; the slot's
 * offset is looked up once per chunk type and read directly after that. */
static int
carries_error(CoreObject *self, PyObject *chunk)
{
    PyObject *type = (PyObject *)Py_TYPE(chunk);
    if (type != self->error_owner) {
        Py_CLEAR(self->error_owner);
        self->error_offset = -1;
        PyObject *descr = PyObject_GetAttr(type, str_error);
        if (descr == NULL) {
            PyErr_Clear();
        }
        else {
            if (Py_IS_TYPE(descr, &PyMemberDescr_Type)) {
                PyMemberDef *member = ((PyMemberDescrObject *)descr)->d_member;
                if (member->type == T_OBJECT_EX || member->type == T_OBJECT) {
                    self->error_offset = member->offset;
                }
            }
            Py_DECREF(descr);
        }
        Py_INCREF(type);
        self->error_owner = type;
    }
    PyObject *value;
    if (self->error_offset >= 0) {
        value = *(PyObject **)((char *)chunk + self->error_offset);
        if (value == NULL || value == Py_None || value == Unset) {
            return 0;
        }
        return PyObject_IsTrue(value);
    }
    value = PyObject_GetAttr(chunk, str_error);
    if (value == NULL) {
        return -1;
    }
    int truth = PyObject_IsTrue(value);
    Py_DECREF(value);
    return truth;
}

/* Decodes one payload; returns a new reference to the chunk, or NULL with no
 * exception set when the general path must decide (a payload that fails to
 * decode, or a chunk that carries an error), or NULL with an exception set. */
static PyObject *
decode_payload(CoreObject *self, PyObject *payload)
{
    PyObject *chunk = PyObject_CallOneArg(self->decode, payload);
    if (chunk == NULL) {
        if (PyErr_ExceptionMatches(DecodeError) ||
            PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
            PyErr_Clear(); /* [DONE], an error payload or bad data */
        }
        return NULL;
    }
    if (self->has_error_field) {
        int truth = carries_error(self, chunk);
        if (truth != 0) {
            Py_DECREF(chunk);
            return NULL; /* an error chunk (or a failed truth test) */
        }
    }
    return chunk;
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

/* Sets the tail to s[0:n] without its leading LFs (blank lines between events
 * are no-ops); returns how many were dropped, or -1 on a Python error. */
static Py_ssize_t
set_tail(CoreObject *self, const char *s, Py_ssize_t n)
{
    Py_ssize_t skipped = 0;
    while (skipped < n && s[skipped] == '\n') {
        skipped++;
    }
    if (PyByteArray_Resize(self->tail, n - skipped) < 0) {
        return -1;
    }
    memcpy(PyByteArray_AS_STRING(self->tail), s + skipped, (size_t)(n - skipped));
    return skipped;
}

/* An event's size as the SSE parser counts it: a final line ending excluded. */
static Py_ssize_t
event_size(const char *s, Py_ssize_t n)
{
    return n > 0 && s[n - 1] == '\n' ? n - 1 : n;
}

/* Frames the consecutive data-only events of s[pos:n] and sets *stop to where
 * the framed events end. With self NULL it appends each payload to `out`;
 * otherwise it decodes each payload while it is still in cache and appends the
 * chunk, stopping before [DONE], an oversized event, or a payload that fails
 * to decode or carries an error. Returns 1 when it reached the events still
 * arriving, 0 when it stopped before an event the general path must handle
 * (also any line that is not a data-only event's), -1 on a Python error. */
static int
frame(CoreObject *self, const char *s, Py_ssize_t n, Py_ssize_t pos, PyObject *out,
      Py_ssize_t *stop)
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
        const char *p = s + pos + 5;
        Py_ssize_t pn = end - pos - 5;
        PyObject *item = PyBytes_FromStringAndSize(p, pn);
        if (item == NULL) {
            return -1;
        }
        if (self != NULL) {
            Py_ssize_t j = 0;
            while (j < pn && (p[j] == ' ' || p[j] == '\t')) {
                j++;
            }
            if (end - pos > self->max_event_size || (j < pn && p[j] == '[')) {
                Py_DECREF(item);
                return 0; /* an oversized event, or [DONE] (or an array) */
            }
            PyObject *chunk = decode_payload(self, item);
            Py_DECREF(item);
            if (chunk == NULL) {
                return PyErr_Occurred() ? -1 : 0;
            }
            item = chunk;
        }
        if (PyList_Append(out, item) < 0) {
            Py_DECREF(item);
            return -1;
        }
        Py_DECREF(item);
        pos = end + 2;
        *stop = pos;
    }
    return 1;
}

/* Commits the events decoded so far (`used` bytes of the stream, counted from
 * the unfinished event's start) and hands the rest of the read, which starts
 * at a clean event boundary, to the general path: self._continue(rest, chunks).
 * Steals the reference to `chunks`. */
static PyObject *
hand_over(CoreObject *self, const char *rest, Py_ssize_t n, Py_ssize_t used, PyObject *chunks)
{
    if (PyByteArray_Resize(self->tail, 0) < 0) {
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

/* Fast mode for any read without CR: the unfinished event grows, or the read
 * completes it and brings whole data-only events, all decoded here. Nothing
 * is changed unless everything succeeds; NULL with no exception set means
 * "the general path decides", with the state as it was. */
static PyObject *
feed_events(CoreObject *self, const char *s, Py_ssize_t n)
{
    const char *t = PyByteArray_AS_STRING(self->tail);
    Py_ssize_t tn = PyByteArray_GET_SIZE(self->tail);
    Py_ssize_t end = blank_line_end(s, n, tn > 0 && t[tn - 1] == '\n');
    if (end < 0) { /* the unfinished event goes on */
        if (tn == 0) {
            Py_ssize_t skipped = 0;
            while (skipped < n && s[skipped] == '\n') {
                skipped++;
            }
            if (event_size(s + skipped, n - skipped) > self->max_event_size) {
                return NULL;
            }
            if (set_tail(self, s, n) < 0) {
                return NULL;
            }
            self->consumed += skipped;
        }
        else {
            if (tn + event_size(s, n) > self->max_event_size) {
                return NULL;
            }
            if (PyByteArray_Resize(self->tail, tn + n) < 0) {
                return NULL;
            }
            memcpy(PyByteArray_AS_STRING(self->tail) + tn, s, (size_t)n);
        }
        return PyList_New(0);
    }
    if (!self->has_error_field &&
        (contains(s, n, "\"error\"", 7) || (tn > 0 && contains(t, tn, "\"error\"", 7)))) {
        return NULL; /* the type cannot show an error member: the general path looks */
    }
    PyObject *chunks = PyList_New(0);
    if (chunks == NULL) {
        return NULL;
    }
    Py_ssize_t pos = 0, stop = 0;
    int ok = 1;
    if (tn > 0) { /* the unfinished event, completed by s[0:end] */
        PyObject *first = PyBytes_FromStringAndSize(NULL, tn + end);
        if (first == NULL) {
            Py_DECREF(chunks);
            return NULL;
        }
        memcpy(PyBytes_AS_STRING(first), t, (size_t)tn);
        memcpy(PyBytes_AS_STRING(first) + tn, s, (size_t)end);
        Py_ssize_t first_stop = 0;
        ok = frame(self, PyBytes_AS_STRING(first), tn + end, 0, chunks, &first_stop);
        if (ok == 1 && first_stop != tn + end) {
            ok = 0;
        }
        Py_DECREF(first);
        pos = end;
    }
    if (ok != 1) {
        Py_DECREF(chunks);
        return NULL; /* the completed event is not for this path: the general one decides */
    }
    ok = frame(self, s, n, pos, chunks, &stop);
    if (ok < 0) {
        Py_DECREF(chunks);
        return NULL;
    }
    if (ok == 0) {
        return hand_over(self, s + stop, n - stop, tn + stop, chunks);
    }
    /* What follows the complete events becomes the tail: check its size. */
    Py_ssize_t skipped = 0;
    while (stop + skipped < n && s[stop + skipped] == '\n') {
        skipped++;
    }
    if (event_size(s + stop + skipped, n - stop - skipped) > self->max_event_size) {
        return hand_over(self, s + stop, n - stop, tn + stop, chunks); /* it raises */
    }
    if (set_tail(self, s + stop, n - stop) < 0) {
        Py_DECREF(chunks);
        return NULL;
    }
    self->consumed += tn + stop + skipped;
    self->events += PyList_GET_SIZE(chunks);
    return chunks;
}

static PyObject *
Core_feed(CoreObject *self, PyObject *data)
{
    if (self->shortcut_limit >= 0 && PyBytes_CheckExact(data) && self->tail != NULL &&
        PyByteArray_CheckExact(self->tail) && self->decode != NULL) {
        const char *s = PyBytes_AS_STRING(data);
        Py_ssize_t n = PyBytes_GET_SIZE(data);
        if (memchr(s, '\r', (size_t)n) == NULL) {
            PyObject *out = feed_events(self, s, n);
            if (out != NULL || PyErr_Occurred()) {
                return out;
            }
        }
    }
    return PyObject_CallMethodOneArg((PyObject *)self, str_feed, data);
}

static PyMethodDef Core_methods[] = {
    {"feed", (PyCFunction)Core_feed, METH_O,
     "feed(data) -> list: decode the next bytes of the stream."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef Core_members[] = {
    {"_decode", T_OBJECT, offsetof(CoreObject, decode), 0, NULL},
    {"_error_of", T_OBJECT, offsetof(CoreObject, error_of), 0, NULL},
    {"_tail", T_OBJECT, offsetof(CoreObject, tail), 0, NULL},
    {"_shortcut_limit", T_PYSSIZET, offsetof(CoreObject, shortcut_limit), 0, NULL},
    {"max_event_size", T_PYSSIZET, offsetof(CoreObject, max_event_size), 0, NULL},
    {"_consumed", T_LONGLONG, offsetof(CoreObject, consumed), 0, NULL},
    {"_events", T_LONGLONG, offsetof(CoreObject, events), 0, NULL},
    {"_has_error_field", T_BOOL, offsetof(CoreObject, has_error_field), 0, NULL},
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
            found = frame(NULL, PyBytes_AS_STRING(first), PyBytes_GET_SIZE(first), 0, payloads,
                          &first_stop);
            if (found == 1 && first_stop != PyBytes_GET_SIZE(first)) {
                found = 0;
            }
            Py_DECREF(first);
            stop = end;
        }
    }
    if (found == 1) {
        found = frame(NULL, s, n, stop, payloads, &stop);
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

static PyMethodDef module_methods[] = {
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
    if (str_error == NULL || str_feed == NULL || str_continue == NULL) {
        return NULL;
    }
    if (PyType_Ready(&CoreType) < 0) {
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
    return module;
}
