# AppArmor profile for the worker container: Docker's default profile
# (docker-default, from moby/profiles apparmor/template.go) with what
# bubblewrap needs to build the sandbox of each tool call: `mount`,
# `pivot_root` and `umount` instead of docker-default's `deny mount`, `userns`
# (Ubuntu 23.10 and later restrict unprivileged user namespaces to profiles
# that allow them; the rule needs AppArmor 4, drop it on older parsers), and
# writes to /proc/sys/user/ (bwrap --disable-userns writes
# max_user_namespaces in the sandbox's own user namespace).
#
# Untested (the project's test machine has no AppArmor). To use it instead of
# `apparmor=unconfined` in docker-compose.yml:
#   sudo apparmor_parser -r -W deploy/docker/worker-apparmor.profile
# then set `apparmor=durable-agents-worker` in the worker's security_opt.
#include <tunables/global>

profile durable-agents-worker flags=(attach_disconnected,mediate_deleted) {
  #include <abstractions/base>
  network,
  deny network alg,
  capability,
  file,
  umount,
  mount,
  pivot_root,
  userns,
  signal (receive) peer=unconfined,
  signal (receive) peer=runc,
  signal (receive) peer=crun,
  signal (receive) peer=docker-default,
  signal (send,receive) peer=durable-agents-worker,

  deny @{PROC}/* w,
  deny @{PROC}/{[^1-9/],[^1-9/][^0-9/],[^1-9s/][^0-9y/][^0-9s/],[^1-9/][^0-9/][^0-9/][^0-9/]*}/** w,
  deny @{PROC}/sys/[^ku]** w,
  deny @{PROC}/sys/kernel/{?,??,[^s][^h][^m]**} w,
  deny @{PROC}/sysrq-trigger rwklx,
  deny @{PROC}/kcore rwklx,

  deny /sys/[^f]*/** wklx,
  deny /sys/f[^s]*/** wklx,
  deny /sys/fs/[^c]*/** wklx,
  deny /sys/fs/c[^g]*/** wklx,
  deny /sys/fs/cg[^r]*/** wklx,
  deny /sys/firmware/** rwklx,
  deny /sys/devices/virtual/powercap/** rwklx,
  deny /sys/kernel/security/** rwklx,

  ptrace (trace,read,tracedby,readby) peer=durable-agents-worker,
}
