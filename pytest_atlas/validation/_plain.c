/* pytest_atlas.validation._plaincheck: the storability fast check of is_valid, in C.
 *
 * is_plain_json(document) is True only when the document is certainly plain, finite JSON that
 * PostgreSQL's jsonb can hold; False means "not known" (storability_violations, in Python, then
 * decides). The contract is the one of the pure-Python check in _storable.py:
 *
 *   - values of the exact types dict, list, str, int, float, bool and None only (no subclass, no
 *     tuple, Enum member, UUID, orjson Fragment, bytes, set, ...);
 *   - dict keys of the exact type str;
 *   - no NUL and no surrogate code point (U+D800..U+DFFF, lone or paired) in a string or key;
 *   - integers in the signed or unsigned 64-bit range (-2**63 .. 2**64-1);
 *   - finite floats only (no NaN, no +-Infinity);
 *   - at most MAX_DEPTH levels, the document itself being level 1 (the Python check, bound by what
 *     orjson writes, says "not known" beyond 254 arrays or objects one in another; this one walks
 *     to MAX_DEPTH, as the exact walk does).
 *
 * The walk runs no Python code: exact type tests, PyDict_Next (no hashing, no __eq__), direct
 * reads of str, int and float objects. It leaves no exception set (an error means "not known" and
 * is cleared) and allocates no object the garbage collector tracks, so no finalizer can run and
 * nothing can change the document while it is walked; borrowed references are enough. It recurses
 * at most MAX_DEPTH C frames deep.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <string.h>

/* must equal pytest_atlas.validation._storable.MAX_DEPTH (which refuses this module otherwise) */
#define MAX_DEPTH 512

typedef struct {
    PyObject *u64_max; /* the int 2**64 - 1 */
} plain_state;

/* No NUL and no surrogate code point in the exact str `text`. */
static inline int
text_is_plain(PyObject *text)
{
#if PY_VERSION_HEX < 0x030C0000
    /* a string made by the legacy wstr API is converted first (no Python code runs) */
    if (PyUnicode_READY(text) < 0) {
        PyErr_Clear();
        return 0;
    }
#endif
    Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    const void *data = PyUnicode_DATA(text);
    switch (PyUnicode_KIND(text)) {
    case PyUnicode_1BYTE_KIND: /* ASCII or Latin-1: no surrogate can be there */
        return length == 0 || memchr(data, 0, (size_t)length) == NULL;
    case PyUnicode_2BYTE_KIND: {
        const Py_UCS2 *units = (const Py_UCS2 *)data;
        for (Py_ssize_t i = 0; i < length; i++) {
            Py_UCS2 unit = units[i];
            if (unit == 0 || (unit >= 0xD800 && unit <= 0xDFFF)) {
                return 0;
            }
        }
        return 1;
    }
    default: { /* PyUnicode_4BYTE_KIND */
        const Py_UCS4 *points = (const Py_UCS4 *)data;
        for (Py_ssize_t i = 0; i < length; i++) {
            Py_UCS4 point = points[i];
            if (point == 0 || (point >= 0xD800 && point <= 0xDFFF)) {
                return 0;
            }
        }
        return 1;
    }
    }
}

/* The exact int `number` is in -2**63 .. 2**64-1. */
static inline int
int_is_plain(PyObject *number, PyObject *u64_max)
{
    int overflow = 0;
    long long value = PyLong_AsLongLongAndOverflow(number, &overflow);
    if (value == -1 && PyErr_Occurred()) { /* not expected of an exact int */
        PyErr_Clear();
        return 0;
    }
    if (overflow == 0) {
        return 1;
    }
    if (overflow < 0) {
        return 0; /* below -2**63 */
    }
    /* above 2**63 - 1: compare with 2**64 - 1 by int's own comparison, called directly (it raises
       nothing for two ints; PyLong_AsUnsignedLongLong would raise OverflowError, an object the
       collector tracks) */
    PyObject *fits = PyLong_Type.tp_richcompare(number, u64_max, Py_LE);
    if (fits == NULL) {
        PyErr_Clear();
        return 0;
    }
    int in_range = fits == Py_True;
    Py_DECREF(fits);
    return in_range;
}

static int container_is_plain(PyObject *value, int depth, PyObject *u64_max);

/* Any value at level `depth`: the scalars here (no call for them), the rest in container_is_plain. */
static inline int
value_is_plain(PyObject *value, int depth, PyObject *u64_max)
{
    if (depth > MAX_DEPTH) {
        return 0;
    }
    PyTypeObject *type = Py_TYPE(value);
    if (type == &PyUnicode_Type) {
        return text_is_plain(value);
    }
    if (type == &PyFloat_Type) {
        return isfinite(PyFloat_AS_DOUBLE(value)) ? 1 : 0;
    }
    if (value == Py_None || value == Py_True || value == Py_False) {
        return 1;
    }
    if (type == &PyLong_Type) {
        return int_is_plain(value, u64_max);
    }
    return container_is_plain(value, depth, u64_max);
}

/* An exact dict or list at level `depth` (at most MAX_DEPTH) whose items are plain; False for
   anything else. */
static int
container_is_plain(PyObject *value, int depth, PyObject *u64_max)
{
    if (PyDict_CheckExact(value)) {
        Py_ssize_t position = 0;
        PyObject *key, *item;
        while (PyDict_Next(value, &position, &key, &item)) {
            if (!PyUnicode_CheckExact(key) || !text_is_plain(key) || !value_is_plain(item, depth + 1, u64_max)) {
                return 0;
            }
        }
        return 1;
    }
    if (PyList_CheckExact(value)) {
        /* the size is read again each turn: no Python code runs, but this costs nothing */
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(value); i++) {
            if (!value_is_plain(PyList_GET_ITEM(value, i), depth + 1, u64_max)) {
                return 0;
            }
        }
        return 1;
    }
    return 0; /* a tuple, a subclass, an Enum member, a UUID, bytes, a set, ... */
}

static PyObject *
is_plain_json(PyObject *module, PyObject *document)
{
    plain_state *state = (plain_state *)PyModule_GetState(module);
    if (value_is_plain(document, 1, state->u64_max)) {
        Py_RETURN_TRUE;
    }
    Py_RETURN_FALSE;
}

PyDoc_STRVAR(is_plain_json_doc,
             "is_plain_json(document, /)\n--\n\n"
             "True when ``document`` is plain, finite JSON PostgreSQL jsonb can hold: exact dict, list, str,\n"
             "int (64 bits), finite float, bool and None, str keys, no NUL or surrogate in any string or key,\n"
             "at most MAX_DEPTH levels. False means \"not known\". No Python code runs during the walk.");

static PyMethodDef plain_methods[] = {
    {"is_plain_json", (PyCFunction)is_plain_json, METH_O, is_plain_json_doc},
    {NULL, NULL, 0, NULL},
};

static int
plain_exec(PyObject *module)
{
    plain_state *state = (plain_state *)PyModule_GetState(module);
    state->u64_max = PyLong_FromUnsignedLongLong(0xFFFFFFFFFFFFFFFFULL);
    if (state->u64_max == NULL) {
        return -1;
    }
    return PyModule_AddIntConstant(module, "MAX_DEPTH", MAX_DEPTH);
}

static int
plain_traverse(PyObject *module, visitproc visit, void *arg)
{
    plain_state *state = (plain_state *)PyModule_GetState(module);
    if (state != NULL) {
        Py_VISIT(state->u64_max);
    }
    return 0;
}

static int
plain_clear(PyObject *module)
{
    plain_state *state = (plain_state *)PyModule_GetState(module);
    if (state != NULL) {
        Py_CLEAR(state->u64_max);
    }
    return 0;
}

static void
plain_free(void *module)
{
    plain_clear((PyObject *)module);
}

static PyModuleDef_Slot plain_slots[] = {
    {Py_mod_exec, (void *)plain_exec},
#if PY_VERSION_HEX >= 0x030C0000
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
    {0, NULL},
};

PyDoc_STRVAR(plain_doc, "The storability fast check of pytest_atlas.validation, in C (see _storable.py).");

static struct PyModuleDef plain_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "pytest_atlas.validation._plaincheck",
    .m_doc = plain_doc,
    .m_size = sizeof(plain_state),
    .m_methods = plain_methods,
    .m_slots = plain_slots,
    .m_traverse = plain_traverse,
    .m_clear = plain_clear,
    .m_free = plain_free,
};

PyMODINIT_FUNC
PyInit__plaincheck(void)
{
    return PyModuleDef_Init(&plain_module);
}
