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
 * - DecoderCore: the base class of ChunkDecoder. Its feed() decodes a read
 *   holding exactly one such event without entering the interpreter, and
 *   otherwise calls the subclass's _feed().
 * - split_events(data, start, head): cuts a buffer into payloads at C speed.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <string.h>

static PyObject *DecodeError = NULL;  /* msgspec.DecodeError */
static PyObject *str_error = NULL;    /* "error" */
static PyObject *str_feed = NULL;     /* "_feed" */

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
    Py_ssize_t shortcut_limit; /* feed() shortcut for reads up to this size; -1: off */
    long long consumed;        /* stream offset where the unfinished event starts */
    long long events;          /* data events seen */
    char has_error_field;      /* the chunk type declares `error` */
} CoreObject;

static int
Core_traverse(CoreObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->decode);
    Py_VISIT(self->error_of);
    return 0;
}

static int
Core_clear(CoreObject *self)
{
    Py_CLEAR(self->decode);
    Py_CLEAR(self->error_of);
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
    }
    return (PyObject *)self;
}

/* The read is one complete data-only event: decode it here. Returns a new
 * reference to the chunk, NULL with no exception set when the read is not for
 * this path, or NULL with an exception set on a real failure. */
static PyObject *
decode_single(CoreObject *self, PyObject *data)
{
    Py_ssize_t n = PyBytes_GET_SIZE(data);
    const char *s = PyBytes_AS_STRING(data);
    if (n < 7 || s[n - 1] != '\n' || s[n - 2] != '\n' || memcmp(s, "data:", 5) != 0) {
        return NULL;
    }
    const char *payload = s + 5;
    Py_ssize_t size = n - 7;
    if (memchr(payload, '\n', (size_t)size) != NULL || memchr(s, '\r', (size_t)n) != NULL) {
        return NULL;
    }
    if (!self->has_error_field && contains(payload, size, "\"error\"", 7)) {
        return NULL;
    }
    if (self->decode == NULL) {
        return NULL;
    }
    PyObject *bytes = PyBytes_FromStringAndSize(payload, size);
    if (bytes == NULL) {
        return NULL;
    }
    PyObject *chunk = PyObject_CallOneArg(self->decode, bytes);
    Py_DECREF(bytes);
    if (chunk == NULL) {
        if (PyErr_ExceptionMatches(DecodeError) ||
            PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
            PyErr_Clear(); /* [DONE], an error payload or bad data: Python decides */
        }
        return NULL;
    }
    if (self->has_error_field) {
        PyObject *error = PyObject_GetAttr(chunk, str_error);
        if (error == NULL) {
            Py_DECREF(chunk);
            return NULL;
        }
        int truth = PyObject_IsTrue(error);
        Py_DECREF(error);
        if (truth != 0) {
            Py_DECREF(chunk);
            return NULL; /* an error chunk (or a failed truth test): Python decides */
        }
    }
    return chunk;
}

static PyObject *
Core_feed(CoreObject *self, PyObject *data)
{
    if (PyBytes_CheckExact(data) && PyBytes_GET_SIZE(data) <= self->shortcut_limit) {
        PyObject *chunk = decode_single(self, data);
        if (chunk != NULL) {
            PyObject *out = PyList_New(1);
            if (out == NULL) {
                Py_DECREF(chunk);
                return NULL;
            }
            PyList_SET_ITEM(out, 0, chunk);
            self->consumed += PyBytes_GET_SIZE(data);
            self->events += 1;
            return out;
        }
        if (PyErr_Occurred()) {
            return NULL;
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
    {"_shortcut_limit", T_PYSSIZET, offsetof(CoreObject, shortcut_limit), 0, NULL},
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

/* Appends to `payloads` the payloads of the consecutive data-only events of
 * s[pos:n]; sets *stop to where the complete events end. Returns 1, 0 when a
 * line is anything else, -1 on a Python error. */
static int
scan(const char *s, Py_ssize_t n, Py_ssize_t pos, PyObject *payloads, Py_ssize_t *stop)
{
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
        PyObject *payload = PyBytes_FromStringAndSize(s + pos + 5, end - pos - 5);
        if (payload == NULL || PyList_Append(payloads, payload) < 0) {
            Py_XDECREF(payload);
            return -1;
        }
        Py_DECREF(payload);
        pos = end + 2;
    }
    *stop = pos;
    return 1;
}

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
            found = scan(PyBytes_AS_STRING(first), PyBytes_GET_SIZE(first), 0, payloads,
                         &first_stop);
            if (found == 1 && first_stop != PyBytes_GET_SIZE(first)) {
                found = 0;
            }
            Py_DECREF(first);
            stop = end;
        }
    }
    if (found == 1) {
        found = scan(s, n, stop, payloads, &stop);
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
    Py_DECREF(msgspec);
    if (DecodeError == NULL) {
        return NULL;
    }
    str_error = PyUnicode_InternFromString("error");
    str_feed = PyUnicode_InternFromString("_feed");
    if (str_error == NULL || str_feed == NULL) {
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
