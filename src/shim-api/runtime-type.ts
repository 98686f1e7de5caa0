/** The one spelling of tsshim's containerd runtime type and the binary containerd derives from it. */
export const RUNTIME_TYPE = 'io.containerd.tsshim.v2';
/** containerd runs runtime type io.containerd.<name>.<version> as containerd-shim-<name>-<version>. */
export const SHIM_BINARY = 'containerd-shim-tsshim-v2';
