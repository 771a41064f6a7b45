//! Access control on Windows: what mode 0600/0700 and a user-only socket are on Unix. A
//! security descriptor with a *protected* DACL (nothing inherited from the parent) and one
//! ACE that grants the current user's SID access: every other user, and the network, is
//! denied because nothing allows them. Used for the data directory (inherited by everything
//! created in it), the key file, and the control pipe.
//!
//! The SDDL is built here as a plain string (testable anywhere); the Windows calls that turn
//! it into a descriptor and apply it live in `imp`, the only unsafe code in Libra (FFI to
//! advapi32 and kernel32 through windows-sys).

/// What an ACE grants: full access to a file or directory, or generic all to a pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rights {
    File,
    Pipe,
}

/// The SDDL of a descriptor that lets only `sid` in. `inherit`: files and directories
/// created inside (a directory's) get the same ACE.
pub fn user_only_sddl(sid: &str, rights: Rights, inherit: bool) -> String {
    let flags = if inherit { "OICI" } else { "" };
    let rights = match rights {
        Rights::File => "FA",
        Rights::Pipe => "GA",
    };
    format!("D:P(A;{flags};{rights};;;{sid})")
}

#[cfg(windows)]
pub use imp::{Descriptor, current_user_sid, pipe_server, restrict_path};

#[cfg(windows)]
#[allow(unsafe_code)]
mod imp {
    use std::io;
    use std::path::Path;
    use std::ptr::{null, null_mut};

    use windows_sys::Win32::Foundation::{CloseHandle, HANDLE, LocalFree};
    use windows_sys::Win32::Security::Authorization::{
        ConvertSidToStringSidW, ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1, SE_FILE_OBJECT,
        SetNamedSecurityInfoW,
    };
    use windows_sys::Win32::Security::{
        ACL, DACL_SECURITY_INFORMATION, GetSecurityDescriptorDacl, GetTokenInformation,
        PROTECTED_DACL_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR, SECURITY_ATTRIBUTES, TOKEN_QUERY, TOKEN_USER,
        TokenUser,
    };
    use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};

    use super::{Rights, user_only_sddl};

    fn wide(s: &std::ffi::OsStr) -> Vec<u16> {
        use std::os::windows::ffi::OsStrExt;
        s.encode_wide().chain(std::iter::once(0)).collect()
    }

    /// The string SID of the user this process runs as (`S-1-5-21-…`).
    pub fn current_user_sid() -> io::Result<String> {
        // SAFETY: every pointer passed is valid for the call; the token handle is closed and
        // the string LocalFree'd on every path; the TOKEN_USER is read from a buffer of the
        // size the first call asked for, 8-byte aligned.
        unsafe {
            let mut token: HANDLE = null_mut();
            if OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut token) == 0 {
                return Err(io::Error::last_os_error());
            }
            let mut len = 0u32;
            GetTokenInformation(token, TokenUser, null_mut(), 0, &mut len);
            let mut buf = vec![0u64; (len as usize).div_ceil(8).max(1)];
            let ok = GetTokenInformation(token, TokenUser, buf.as_mut_ptr().cast(), len, &mut len);
            let err = io::Error::last_os_error();
            CloseHandle(token);
            if ok == 0 {
                return Err(err);
            }
            let user = &*(buf.as_ptr().cast::<TOKEN_USER>());
            let mut text: *mut u16 = null_mut();
            if ConvertSidToStringSidW(user.User.Sid, &mut text) == 0 {
                return Err(io::Error::last_os_error());
            }
            let mut n = 0;
            while *text.add(n) != 0 {
                n += 1;
            }
            let sid = String::from_utf16_lossy(std::slice::from_raw_parts(text, n));
            LocalFree(text.cast());
            Ok(sid)
        }
    }

    /// A security descriptor made from SDDL, freed when dropped.
    pub struct Descriptor(PSECURITY_DESCRIPTOR);

    // SAFETY: the descriptor is memory this value owns alone; Windows only reads it.
    unsafe impl Send for Descriptor {}
    unsafe impl Sync for Descriptor {}

    impl Descriptor {
        pub fn from_sddl(sddl: &str) -> io::Result<Descriptor> {
            let text = wide(std::ffi::OsStr::new(sddl));
            let mut sd: PSECURITY_DESCRIPTOR = null_mut();
            // SAFETY: `text` is NUL-terminated and outlives the call; `sd` receives memory
            // that Drop frees with LocalFree, as the function's contract asks.
            let ok = unsafe {
                ConvertStringSecurityDescriptorToSecurityDescriptorW(
                    text.as_ptr(),
                    SDDL_REVISION_1,
                    &mut sd,
                    null_mut(),
                )
            };
            if ok == 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(Descriptor(sd))
        }

        /// Only the current user, with `rights`.
        pub fn user_only(rights: Rights, inherit: bool) -> io::Result<Descriptor> {
            Descriptor::from_sddl(&user_only_sddl(&current_user_sid()?, rights, inherit))
        }

        /// Attributes pointing at this descriptor (valid while it lives), not inheritable.
        pub fn attributes(&self) -> SECURITY_ATTRIBUTES {
            SECURITY_ATTRIBUTES {
                nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
                lpSecurityDescriptor: self.0,
                bInheritHandle: 0,
            }
        }
    }

    impl Drop for Descriptor {
        fn drop(&mut self) {
            // SAFETY: the pointer came from ConvertStringSecurityDescriptor…, freed once.
            unsafe {
                LocalFree(self.0);
            }
        }
    }

    /// One instance of the named pipe `name` under descriptor `sd`, refusing remote clients;
    /// `first`: fail if the name exists already (someone else's pipe).
    pub fn pipe_server(
        name: &str,
        first: bool,
        sd: &Descriptor,
    ) -> io::Result<tokio::net::windows::named_pipe::NamedPipeServer> {
        let mut attrs = sd.attributes();
        // SAFETY: `attrs` and the descriptor it points to outlive the call.
        unsafe {
            tokio::net::windows::named_pipe::ServerOptions::new()
                .first_pipe_instance(first)
                .reject_remote_clients(true)
                .create_with_security_attributes_raw(name, (&mut attrs as *mut SECURITY_ATTRIBUTES).cast())
        }
    }

    /// Replaces the DACL of a file or directory with "the current user only" (protected, so
    /// nothing is inherited from above); `inherit` passes it on to what a directory holds.
    pub fn restrict_path(path: &Path, inherit: bool) -> io::Result<()> {
        let sd = Descriptor::user_only(Rights::File, inherit)?;
        let name = wide(path.as_os_str());
        // SAFETY: `sd` outlives both calls; the DACL pointer points into it; `name` is
        // NUL-terminated.
        unsafe {
            let (mut present, mut defaulted) = (0, 0);
            let mut dacl: *mut ACL = null_mut();
            if GetSecurityDescriptorDacl(sd.0, &mut present, &mut dacl, &mut defaulted) == 0 {
                return Err(io::Error::last_os_error());
            }
            let r = SetNamedSecurityInfoW(
                name.as_ptr(),
                SE_FILE_OBJECT,
                DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
                null_mut(),
                null_mut(),
                dacl,
                null(),
            );
            if r != 0 {
                return Err(io::Error::from_raw_os_error(r as i32));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The descriptor's structure: a protected DACL (no inherited ACEs), exactly one ACE, an
    /// allow for the user's SID; no well-known group (Everyone, Authenticated Users, Users,
    /// Administrators, Network) appears, so each is denied.
    #[test]
    fn the_descriptor_allows_the_user_alone() {
        let sid = "S-1-5-21-1004336348-1177238915-682003330-1001";
        for (rights, inherit, want) in
            [(Rights::Pipe, false, "GA"), (Rights::File, false, "FA"), (Rights::File, true, "FA")]
        {
            let sddl = user_only_sddl(sid, rights, inherit);
            let dacl = sddl.strip_prefix("D:P").expect("a protected DACL and nothing else (no owner, group or SACL)");
            let aces: Vec<&str> =
                dacl.split(')').filter(|a| !a.is_empty()).map(|a| a.trim_start_matches('(')).collect();
            assert_eq!(aces.len(), 1, "{sddl}");
            let fields: Vec<&str> = aces[0].split(';').collect();
            assert_eq!(fields.len(), 6, "{sddl}");
            assert_eq!(fields[0], "A", "an allow ACE");
            assert_eq!(fields[1], if inherit { "OICI" } else { "" });
            assert_eq!(fields[2], want);
            assert_eq!(fields[5], sid, "for the user's SID only");
            for group in ["WD", "AU", "BU", "BA", "NU", "AN", "S-1-1-0"] {
                assert!(!sddl.contains(&format!(";{group})")), "{group} in {sddl}");
            }
        }
    }
}
