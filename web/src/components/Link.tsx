import type { AnchorHTMLAttributes, MouseEvent } from "react";
import { withFilters } from "../lib/filters";
import { navigate, useLocation } from "../lib/router";

interface Props extends AnchorHTMLAttributes<HTMLAnchorElement> {
  to: string;
  /** Carry the period, zone and team/key/model filters along (default). */
  keepFilters?: boolean;
}

/** An in-app link: a real <a href> (open in new tab works), navigated without reload. */
export function Link({ to, keepFilters = true, onClick, ...rest }: Props) {
  const { search } = useLocation();
  const href = keepFilters ? withFilters(to, search) : to;
  const click = (event: MouseEvent<HTMLAnchorElement>) => {
    onClick?.(event);
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    navigate(href);
    window.scrollTo({ top: 0 });
  };
  return <a href={href} onClick={click} {...rest} />;
}
