/* For unit tests that link the operations table (its history commands,
 * src/ops/ops_hist.c) with a fake history of their own: the history calls
 * besides the tariffs', each answering "nothing stored" so that the real
 * src/hist/ (and with it the poller) is not linked in. Include once; a test
 * with tariff fakes of its own defines FAKE_HIST_OWN_TARIFFS first. */
#include <errno.h>
#include <stdio.h>

#include "sg/hist.h"

int hist_range(struct hist *h, const char *from, const char *to, int64_t *f, int64_t *t)
{
	(void)h, (void)from, (void)to;
	*f = *t = 0;
	return 0;
}

json_t *hist_load_profile_json(struct hist *h, int slot, int64_t from, int64_t to, char *err,
			       size_t errlen)
{
	(void)h, (void)slot, (void)from, (void)to;
	snprintf(err, errlen, "fake history: no load profile");
	return NULL;
}

int hist_load_profile_csv(struct hist *h, int slot, int64_t from, int64_t to, FILE *f)
{
	(void)h, (void)slot, (void)from, (void)to, (void)f;
	return -ENOSYS;
}

int hist_load_profile_clear(struct hist *h, int slot)
{
	(void)h, (void)slot;
	return -ENOSYS;
}

json_t *hist_recorders_json(struct hist *h)
{
	(void)h;
	return json_array();
}

json_t *hist_recorder_json(struct hist *h, int rec, const char *view, const char *from,
			   const char *to, char *err, size_t errlen)
{
	(void)h, (void)rec, (void)view, (void)from, (void)to;
	snprintf(err, errlen, "fake history: no recorder");
	return NULL;
}

int hist_recorder_csv(struct hist *h, int rec, const char *from, const char *to, FILE *f, char *err,
		      size_t errlen)
{
	(void)h, (void)rec, (void)from, (void)to, (void)f;
	snprintf(err, errlen, "fake history: no recorder");
	return -ENOSYS;
}

int hist_recorder_clear(struct hist *h, int rec)
{
	(void)h, (void)rec;
	return -ENOSYS;
}

json_t *hist_calc_json(struct hist *h, int n, int64_t from, int64_t to, char *err, size_t errlen)
{
	(void)h, (void)n, (void)from, (void)to;
	snprintf(err, errlen, "fake history: no equation");
	return NULL;
}

int hist_calc_csv(struct hist *h, int n, int64_t from, int64_t to, FILE *f, char *err,
		  size_t errlen)
{
	(void)h, (void)n, (void)from, (void)to, (void)f;
	snprintf(err, errlen, "fake history: no equation");
	return -ENOSYS;
}

#ifndef FAKE_HIST_OWN_TARIFFS
json_t *hist_tariffs_json(struct hist *h)
{
	(void)h;
	return json_pack("{s:n}", "calendar");
}

int hist_tariffs_set(struct hist *h, const char *text, size_t len, char *err, size_t errlen)
{
	(void)h, (void)text, (void)len;
	snprintf(err, errlen, "fake history: no calendar");
	return -EINVAL;
}
#endif
