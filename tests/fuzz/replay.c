/* Replay a corpus without libFuzzer (make check): LLVMFuzzerTestOneInput over
 * every regular file of each directory or file argument, sorted by name. A
 * crash or sanitizer report ends the process with a failure; else exit 0
 * and one line "N inputs". */
#include "fuzz.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int run_file(const char *path)
{
	struct stat st;
	uint8_t *buf;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) < 0) {
		perror(path);
		return -1;
	}
	buf = malloc((size_t)st.st_size + 1); /* +1: never malloc(0) */
	if (!buf)
		abort();
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	/* A copy of exactly the file's size, so ASan sees any read past its end. */
	uint8_t *exact = malloc(got ? got : 1);
	if (!exact)
		abort();
	memcpy(exact, buf, got);
	free(buf);
	fprintf(stderr, "replay %s\n", path);
	LLVMFuzzerTestOneInput(exact, got);
	free(exact);
	return 0;
}

static int run_dir(const char *dir, unsigned *count)
{
	struct dirent **ents;
	int n = scandir(dir, &ents, NULL, alphasort), rc = 0;

	if (n < 0) {
		perror(dir);
		return -1;
	}
	for (int i = 0; i < n; i++) {
		char path[4096];
		struct stat st;

		snprintf(path, sizeof(path), "%s/%s", dir, ents[i]->d_name);
		if (!rc && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
			rc = run_file(path);
			(*count)++;
		}
		free(ents[i]);
	}
	free(ents);
	return rc;
}

int main(int argc, char **argv)
{
	unsigned count = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE…\n", argv[0]);
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		struct stat st;
		int rc;

		if (stat(argv[i], &st) < 0) {
			perror(argv[i]);
			return 2;
		}
		rc = S_ISDIR(st.st_mode) ? run_dir(argv[i], &count) : run_file(argv[i]);
		count += !S_ISDIR(st.st_mode);
		if (rc < 0)
			return 2;
	}
	printf("%u inputs\n", count);
	return 0;
}
