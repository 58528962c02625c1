import { createContext, useContext } from "react";

/** What the signed-in person may do: admins change things, viewers read. */
export interface Access {
  admin: boolean;
}

export const AccessContext = createContext<Access>({ admin: true });

export function useAccess(): Access {
  return useContext(AccessContext);
}

export const ADMIN_ONLY = "Only admins can change this; you are signed in as a viewer.";
