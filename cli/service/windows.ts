/** SEA asset keys of WinSW (carried inside ctbridge.exe). */
export const WINSW_ASSET = 'winsw/winsw.exe';
export const WINSW_CONFIG_ASSET = 'winsw/winsw.exe.config';
