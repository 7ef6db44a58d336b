"""A feedback preprocessor: in graded check cells, an error is shown as its message only.

The checks in minillm.checks say what is wrong and give a hint in the message; the traceback would add
only the hidden tests' code, which feedback must not reveal."""
from nbconvert.preprocessors import Preprocessor
from traitlets import Bool


class ShortErrors(Preprocessor):
    enabled = Bool(True)     # nbconvert's preprocessors are off unless enabled

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade"):
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error":
                    out["traceback"] = [f"{out.get('ename', 'Error')}: {out.get('evalue', '')}"]
        return cell, resources
