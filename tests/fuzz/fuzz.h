/* Shared by the libFuzzer harnesses of tests/fuzz/ (see README "Fuzzing"):
 * each harness defines LLVMFuzzerTestOneInput; libFuzzer (make fuzz) or
 * replay.c (make check: every file of a corpus directory) calls it. */
#ifndef SG_FUZZ_H
#define SG_FUZZ_H
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct app;

/* The libFuzzer entry point each harness defines. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A private directory under /tmp made on first use and removed at exit. */
const char *fuzz_tmpdir(void);
/* Write data to <fuzz_tmpdir>/<name> (replacing it); the path, or NULL. */
const char *fuzz_write(const char *name, const uint8_t *data, size_t size);
/* data as a new NUL-terminated string (embedded NULs kept); free() it. */
char *fuzz_strndup(const uint8_t *data, size_t size);

/* A whole daemon (the start-up of src/sgd/main.c without serial lines):
 * descriptions from etc/devices, settings and store in fuzz_tmpdir, the
 * control socket, HTTP on a free loopback port, MQTT links off, no UDP
 * discovery; built on the first call, torn down at exit. NULL on failure. */
struct app *fuzz_app(void);
/* Put back the settings fuzz_app() started with if an input changed them,
 * so every input starts from the same state. */
void fuzz_app_restore(void);
/* Wait for the daemon's answer on fd (the input already sent): run the loop
 * until the daemon closes it, complete (may be NULL) says what came back is
 * whole, or ms pass; bytes read. */
size_t fuzz_app_exchange(int fd, int ms, int (*complete)(const char *buf, size_t len));
/* One turn of the loop: whatever is ready now runs. */
void fuzz_app_turn(void);
/* A connected blocking stream socket to sa, or -1. */
int fuzz_app_connect(const struct sockaddr *sa, socklen_t len);
/* Send data on fd (turning the loop while the daemon's buffer is full), then
 * half-close: the input is all there is. */
void fuzz_app_send(int fd, const uint8_t *data, size_t size);
#endif
