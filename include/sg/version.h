/* sgd's own version, reported in status, identification and discovery. */
#ifndef SG_VERSION_H
#define SG_VERSION_H

#define SGD_VERSION "0.1.0"
#define SGD_VERSION_X100 10 /* SW version ×100 as Iskra registers carry it */

#endif
