/* standalone.c -- replays fuzz corpora through a fuzz target without libFuzzer.
 *
 * Linked with each tests/fuzz/fuzz_*.c into a plain program that make check
 * runs over tests/fuzz/corpus/<target>/: every file must go through the
 * target without a crash or sanitizer report.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    long len;
    int rc = -1;

    if (f == NULL)
        goto done;
    if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        goto done;
    buf = malloc((size_t)len + 1);
    if (buf == NULL || fread(buf, 1, (size_t)len, f) != (size_t)len)
        goto done;
    LLVMFuzzerTestOneInput(buf, (size_t)len);
    rc = 0;
done:
    free(buf);
    if (f)
        fclose(f);
    return rc;
}

int
main(int argc, char **argv)
{
    int nfiles = 0;

    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "%s: cannot stat\n", argv[i]);
            return 1;
        }
        if (S_ISDIR(st.st_mode)) {
            DIR *d = opendir(argv[i]);
            struct dirent *de;
            if (d == NULL)
                return 1;
            while ((de = readdir(d)) != NULL) {
                char path[4096];
                if (de->d_name[0] == '.')
                    continue;
                snprintf(path, sizeof(path), "%s/%s", argv[i], de->d_name);
                if (run_file(path) != 0) {
                    fprintf(stderr, "%s: cannot read\n", path);
                    closedir(d);
                    return 1;
                }
                nfiles++;
            }
            closedir(d);
        } else {
            if (run_file(argv[i]) != 0)
                return 1;
            nfiles++;
        }
    }
    printf("ok - replayed %d inputs\n", nfiles);
    return 0;
}
