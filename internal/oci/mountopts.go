package oci

import (
	"strings"

	"golang.org/x/sys/unix"
)

type flagOpt struct {
	clear bool
	flag  uintptr
}

var mountFlagNames = map[string]flagOpt{
	"acl":           {false, unix.MS_POSIXACL},
	"async":         {true, unix.MS_SYNCHRONOUS},
	"atime":         {true, unix.MS_NOATIME},
	"bind":          {false, unix.MS_BIND},
	"defaults":      {false, 0},
	"dev":           {true, unix.MS_NODEV},
	"diratime":      {true, unix.MS_NODIRATIME},
	"dirsync":       {false, unix.MS_DIRSYNC},
	"exec":          {true, unix.MS_NOEXEC},
	"iversion":      {false, unix.MS_I_VERSION},
	"lazytime":      {false, unix.MS_LAZYTIME},
	"loud":          {true, unix.MS_SILENT},
	"mand":          {false, unix.MS_MANDLOCK},
	"noacl":         {true, unix.MS_POSIXACL},
	"noatime":       {false, unix.MS_NOATIME},
	"nodev":         {false, unix.MS_NODEV},
	"nodiratime":    {false, unix.MS_NODIRATIME},
	"noexec":        {false, unix.MS_NOEXEC},
	"noiversion":    {true, unix.MS_I_VERSION},
	"nolazytime":    {true, unix.MS_LAZYTIME},
	"nomand":        {true, unix.MS_MANDLOCK},
	"norelatime":    {true, unix.MS_RELATIME},
	"nostrictatime": {true, unix.MS_STRICTATIME},
	"nosuid":        {false, unix.MS_NOSUID},
	"nosymfollow":   {false, unix.MS_NOSYMFOLLOW},
	"rbind":         {false, unix.MS_BIND | unix.MS_REC},
	"relatime":      {false, unix.MS_RELATIME},
	"remount":       {false, unix.MS_REMOUNT},
	"ro":            {false, unix.MS_RDONLY},
	"rw":            {true, unix.MS_RDONLY},
	"silent":        {false, unix.MS_SILENT},
	"strictatime":   {false, unix.MS_STRICTATIME},
	"suid":          {true, unix.MS_NOSUID},
	"symfollow":     {true, unix.MS_NOSYMFOLLOW},
	"sync":          {false, unix.MS_SYNCHRONOUS},
}

var propagationFlags = map[string]uintptr{
	"private":     unix.MS_PRIVATE,
	"rprivate":    unix.MS_PRIVATE | unix.MS_REC,
	"shared":      unix.MS_SHARED,
	"rshared":     unix.MS_SHARED | unix.MS_REC,
	"slave":       unix.MS_SLAVE,
	"rslave":      unix.MS_SLAVE | unix.MS_REC,
	"unbindable":  unix.MS_UNBINDABLE,
	"runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

// recursive attributes applied with mount_setattr(AT_RECURSIVE).
type recAttr struct {
	set, clr uint64
}

var recAttrNames = map[string]recAttr{
	"rro":            {unix.MOUNT_ATTR_RDONLY, 0},
	"rrw":            {0, unix.MOUNT_ATTR_RDONLY},
	"rnosuid":        {unix.MOUNT_ATTR_NOSUID, 0},
	"rsuid":          {0, unix.MOUNT_ATTR_NOSUID},
	"rnodev":         {unix.MOUNT_ATTR_NODEV, 0},
	"rdev":           {0, unix.MOUNT_ATTR_NODEV},
	"rnoexec":        {unix.MOUNT_ATTR_NOEXEC, 0},
	"rexec":          {0, unix.MOUNT_ATTR_NOEXEC},
	"rnodiratime":    {unix.MOUNT_ATTR_NODIRATIME, 0},
	"rdiratime":      {0, unix.MOUNT_ATTR_NODIRATIME},
	"rrelatime":      {unix.MOUNT_ATTR_RELATIME, unix.MOUNT_ATTR__ATIME},
	"rnorelatime":    {0, unix.MOUNT_ATTR_RELATIME},
	"rnoatime":       {unix.MOUNT_ATTR_NOATIME, unix.MOUNT_ATTR__ATIME},
	"ratime":         {0, unix.MOUNT_ATTR_NOATIME},
	"rstrictatime":   {unix.MOUNT_ATTR_STRICTATIME, unix.MOUNT_ATTR__ATIME},
	"rnostrictatime": {0, unix.MOUNT_ATTR_STRICTATIME},
	"rnosymfollow":   {unix.MOUNT_ATTR_NOSYMFOLLOW, 0},
	"rsymfollow":     {0, unix.MOUNT_ATTR_NOSYMFOLLOW},
}

// parsedOpts is one mount's options split by how they are applied.
type parsedOpts struct {
	flags uintptr   // mount(2) flags
	prop  []uintptr // propagation changes, applied after the mount
	rec   recAttr   // mount_setattr(AT_RECURSIVE) changes
	data  string    // filesystem-specific options
}

func parseMountOptions(opts []string) parsedOpts {
	var p parsedOpts
	var data []string
	for _, o := range opts {
		if f, ok := mountFlagNames[o]; ok {
			if f.clear {
				p.flags &^= f.flag
			} else {
				p.flags |= f.flag
			}
			continue
		}
		if f, ok := propagationFlags[o]; ok {
			p.prop = append(p.prop, f)
			continue
		}
		if r, ok := recAttrNames[o]; ok {
			p.rec.set |= r.set
			p.rec.clr |= r.clr
			continue
		}
		if o == "tmpcopyup" || o == "idmap" || o == "ridmap" {
			continue
		}
		data = append(data, o)
	}
	p.data = strings.Join(data, ",")
	return p
}
