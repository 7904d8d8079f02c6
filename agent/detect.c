/*
 * detect.c -- the agent's total resources and attributes.
 *
 * The operator's --resources wins; every standard resource it leaves out
 * is probed as Mesos does (reference §8.2): cpus from the online CPU count,
 * mem as total - 1 GiB (or half when the machine has less than 2 GiB),
 * disk as the size of the filesystem holding work_dir - 5 GiB (or half
 * below 10 GiB), and ports [31000-32000]. The "arch" attribute comes from
 * uname(2) unless --attributes already names one. agent_arch_from_engine()
 * maps the Docker engine's names of an image's architecture (GOARCH, plus
 * the variant for arm) onto these names, so that an image can be compared
 * with the agent's "arch".
 */
#include "agent.h"
#include "log.h"
#include "xmalloc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <unistd.h>

#define MIB                     (1024.0 * 1024.0)

static void add_scalar(struct bt_resources *r, const char *name, double v)
{
	struct bt_value val;

	bt_value_init(&val);
	val.type = BT_SCALAR;
	val.scalar = bt_scalar_from_double(v);
	bt_resources_add_one(r, name, "*", &val);
	bt_value_release(&val);
}

static double detect_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 ? (double)n : 1.0;
}

/* in MB */
static double detect_mem(void)
{
	struct sysinfo si;
	double total;

	if (sysinfo(&si) != 0)
		return 1024.0;
	total = (double)si.totalram * (double)si.mem_unit / MIB;
	if (total >= 2048.0)
		return total - 1024.0;
	return total / 2.0;
}

/* in MB */
static double detect_disk(const char *work_dir)
{
	struct statvfs sv;
	double total;

	if (statvfs(work_dir, &sv) != 0) {
		log_warn("unable to stat the filesystem of '%s': %s; assuming 10 GB of disk",
		    work_dir, strerror(errno));
		return 10240.0;
	}
	total = (double)sv.f_blocks * (double)sv.f_frsize / MIB;
	if (total >= 10240.0)
		return total - 5120.0;
	return total / 2.0;
}

/* whole MB, as Mesos rounds detected memory and disk */
static double whole(double mb)
{
	return mb < 1.0 ? 0.0 : (double)(long long)mb;
}

int agent_detect_resources(struct bt_resources *r, const char *work_dir, char **cause)
{
	if (bt_resources_find(r, "cpus", NULL) == NULL)
		add_scalar(r, "cpus", detect_cpus());
	if (bt_resources_find(r, "mem", NULL) == NULL)
		add_scalar(r, "mem", whole(detect_mem()));
	if (bt_resources_find(r, "disk", NULL) == NULL)
		add_scalar(r, "disk", whole(detect_disk(work_dir)));
	if (bt_resources_find(r, "ports", NULL) == NULL) {
		struct bt_value val;
		bt_value_init(&val);
		if (bt_value_parse(&val, AGENT_DEFAULT_PORTS, false, cause) != 0) {
			bt_value_release(&val);
			return -1;
		}
		bt_resources_add_one(r, "ports", "*", &val);
		bt_value_release(&val);
	}
	return 0;
}

const char *agent_detect_arch(void)
{
	static struct utsname u;
	static const char *const map[][2] = {
		{ "x86_64", "x86_64" },
		{ "amd64", "x86_64" },
		{ "ppc64le", "ppc64le" },
		{ "aarch64", "aarch64" },
		{ "arm64", "aarch64" },
	};
	size_t i;

	if (uname(&u) != 0)
		return "unknown";
	for (i = 0; i < sizeof map / sizeof map[0]; i++) {
		if (strcmp(u.machine, map[i][0]) == 0)
			return map[i][1];
	}
	return u.machine;
}

/* the engine's "amd64", "arm64", "arm"+"v7" as uname names them; NULL for "" */
const char *agent_arch_from_engine(const char *arch, const char *variant)
{
	static const char *const map[][2] = {
		{ "amd64", "x86_64" },
		{ "x86_64", "x86_64" },
		{ "arm64", "aarch64" },
		{ "aarch64", "aarch64" },
		{ "ppc64le", "ppc64le" },
		{ "ppc64", "ppc64" },
		{ "386", "i686" },
		{ "s390x", "s390x" },
		{ "riscv64", "riscv64" },
		{ "mips64le", "mips64" },
		{ "loong64", "loongarch64" },
	};
	size_t i;

	if (arch == NULL || *arch == '\0')
		return NULL;
	if (strcmp(arch, "arm") == 0) {
		if (variant != NULL && strcmp(variant, "v6") == 0)
			return "armv6l";
		if (variant != NULL && strcmp(variant, "v8") == 0)
			return "armv8l";
		return "armv7l";
	}
	for (i = 0; i < sizeof map / sizeof map[0]; i++) {
		if (strcmp(arch, map[i][0]) == 0)
			return map[i][1];
	}
	return arch;
}

/*
 * NULL when an image of the engine's architecture may run on this agent,
 * else why not: "image 'X' is built for ppc64le but this agent is x86_64
 * (engine architecture 'ppc64le')"; an image without one may run
 */
char *agent_image_arch_problem(const struct agent *a, const char *image, const char *earch,
    const char *variant)
{
	const struct bt_attribute *own = bt_attributes_find(&a->attributes, "arch");
	const char *arch = agent_arch_from_engine(earch, variant);
	const char *alias;
	char *mine, *msg = NULL;

	if (arch == NULL || own == NULL)
		return NULL;
	mine = bt_attribute_value_string(own);
	alias = agent_arch_from_engine(mine, NULL);
	if (strcmp(arch, mine) == 0 || (alias != NULL && strcmp(alias, arch) == 0))
		goto out;
	if (variant != NULL && *variant != '\0')
		msg = xasprintf("image '%s' is built for %s but this agent is %s "
		    "(engine architecture '%s', variant '%s')", image, arch, mine, earch, variant);
	else
		msg = xasprintf("image '%s' is built for %s but this agent is %s "
		    "(engine architecture '%s')", image, arch, mine, earch);
out:
	free(mine);
	return msg;
}

/* parse --resources and --attributes, then fill in what they leave out */
int agent_setup_resources(struct agent *a, char **cause)
{
	const char *res = a->resources_flag != NULL ? a->resources_flag : "";

	bt_resources_init(&a->resources);
	bt_attributes_init(&a->attributes);
	if (*res != '\0' && bt_resources_parse(&a->resources, res, NULL, cause) != 0)
		return -1;
	if (a->attributes_flag != NULL && *a->attributes_flag != '\0' &&
	    bt_attributes_parse(&a->attributes, a->attributes_flag, cause) != 0)
		return -1;
	if (agent_detect_resources(&a->resources, a->work_dir, cause) != 0)
		return -1;
	if (bt_attributes_find(&a->attributes, "arch") == NULL)
		bt_attributes_set_text(&a->attributes, "arch", agent_detect_arch());
	return 0;
}
