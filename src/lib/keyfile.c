// SPDX-License-Identifier: MIT
#include "lib/keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "lib/encoding.h"
#include "lib/log.h"

int keyfile_load(const char *path, uint8_t priv[32])
{
	char text[KEY_BASE64_LEN + 3];
	struct stat st;
	ssize_t n;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	if (st.st_mode & 077) {
		close(fd);
		return -EPERM;
	}
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n < 0)
		return -errno;
	while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'))
		n--;
	text[n] = '\0';
	ret = key_from_base64(priv, text);
	memzero_explicit(text, sizeof(text));
	return ret;
}

int keyfile_store(const char *path, const uint8_t priv[32])
{
	char text[KEY_BASE64_LEN + 2], tmp[4096];
	int fd, ret = 0;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	key_to_base64(text, priv);
	text[KEY_BASE64_LEN] = '\n';
	if (fchmod(fd, 0600) < 0 || write(fd, text, KEY_BASE64_LEN + 1) != KEY_BASE64_LEN + 1 ||
	    fsync(fd) < 0)
		ret = errno ? -errno : -EIO;
	memzero_explicit(text, sizeof(text));
	if (close(fd) < 0 && !ret)
		ret = -errno;
	if (!ret && rename(tmp, path) < 0)
		ret = -errno;
	if (ret)
		unlink(tmp);
	return ret;
}

int keyfile_load_or_create(const char *path, uint8_t priv[32], bool *created)
{
	int ret = keyfile_load(path, priv);

	*created = false;
	if (ret == 0)
		return 0;
	if (ret != -ENOENT) {
		log_error("cannot use key file path=%s error=%s", path,
			  ret == -EPERM	   ? "mode allows group or others (want 0600)"
			  : ret == -EINVAL ? "not one base64 key"
					   : strerror(-ret));
		return ret;
	}
	x25519_generate(priv);
	ret = keyfile_store(path, priv);
	if (ret) {
		memzero_explicit(priv, 32);
		log_error("cannot write key file path=%s error=%s", path, strerror(-ret));
		return ret;
	}
	*created = true;
	return 0;
}
