import { Link } from "../components/Link";
import { Empty } from "../components/states";
import { PageTitle } from "../components/ui";

export function NotFound() {
  return (
    <>
      <PageTitle title="Page not found" />
      <Empty title="There is no page at this address.">
        <Link to="/">Go to the overview</Link>
      </Empty>
    </>
  );
}
