//! Loading and initializing the PKCS#11 module.

use std::path::Path;

use cryptoki::context::{CInitializeArgs, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;

use super::HsmError;
use crate::secret::Secret;

/// Logs `session` in as the token's user. Another session may already have
/// logged the token in, which PKCS#11 reports as CKR_USER_ALREADY_LOGGED_IN:
/// that is success.
pub fn login(session: &Session, pin: &Secret) -> Result<(), HsmError> {
    let pin = AuthPin::new(
        pin.expose_str()
            .ok_or(HsmError::Unexpected("PIN is not UTF-8"))?
            .to_owned(),
    );
    match session.login(UserType::User, Some(&pin)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// An initialized PKCS#11 module. One per process: `C_Initialize` is global
/// to the library.
#[derive(Clone, Debug)]
pub struct Module {
    ctx: Pkcs11,
}

impl Module {
    /// Loads the library and calls `C_Initialize` with `CKF_OS_LOCKING_OK`,
    /// without which SoftHSM and others are not safe to call from several
    /// threads at once.
    pub fn load(path: &Path) -> Result<Module, HsmError> {
        let ctx = Pkcs11::new(path)?;
        ctx.initialize(CInitializeArgs::OsThreads)?;
        Ok(Module { ctx })
    }

    /// The slot holding the token with this label. Slot numbers change when
    /// tokens are added, so the label is the stable name.
    pub fn slot_for_token(&self, label: &str) -> Result<Slot, HsmError> {
        for slot in self.ctx.get_slots_with_token()? {
            if self.ctx.get_token_info(slot)?.label().trim_end() == label {
                return Ok(slot);
            }
        }
        Err(HsmError::TokenNotFound(label.to_owned()))
    }

    /// The underlying context.
    pub fn context(&self) -> &Pkcs11 {
        &self.ctx
    }
}
