/* Private to the HTTP server's files (http.c, static.c). */
#ifndef SG_API_HTTP_INT_H
#define SG_API_HTTP_INT_H

#include <stdint.h>

#include "sg/http.h"

/* Reply with the file fd (size bytes; fd is closed by the server). */
void http_reply_fd(struct http_req *r, unsigned status, const char *content_type, int fd,
		   uint64_t size);
/* Serve url from the web root www_fd (-1 = none) for GET/HEAD. */
void http_static(struct http_req *r, int www_fd, const char *url, const char *method);

#endif
